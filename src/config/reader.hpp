// Internal to the config module: reading typed values out of a yaml-cpp tree while collecting
// every problem as "FILE:LINE: key.path: what is wrong", and remembering the line of each key
// so that later checks (validate.cpp) can point at it.
//
// SECURITY: the file is trusted (written by the operator) but may be wrong; nothing here throws
// on bad content, and error messages quote only the offending scalar, never a whole section.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mailhop/config/loader.hpp"

namespace mailhop::config::detail {

struct Diagnostics {
  std::string file;
  std::vector<ConfigError> errors;
  std::vector<ConfigError> warnings;
  std::map<std::string, int, std::less<>> lines;  // key path -> line counting from 1
  // key path -> the environment variable that set it (environment.cpp); wins over `lines`.
  std::map<std::string, std::string, std::less<>> variables;

  void error(int line, std::string key, std::string message);
  void warning(int line, std::string key, std::string message);
  // The line of `key`, else of its nearest parent written in the file ("listen[0].tls" ->
  // "listen[0]" -> "listen"), else 0.
  int line_of(std::string_view key) const;
  // The variable that set `key` or its nearest parent, else "".
  std::string variable_of(std::string_view key) const;
};

// One value in the file: its node, its key path and the line of its key.
struct Field {
  YAML::Node node;
  std::string path;
  int line = 0;
};

// Reads one mapping. get() each known key; finish() then reports the keys nobody asked for.
class MapReader {
 public:
  // `node` null or undefined reads as an empty mapping.
  MapReader(Diagnostics& d, const YAML::Node& node, std::string path, int line);
  std::optional<Field> get(std::string_view key);
  void finish();

 private:
  Diagnostics& d_;
  YAML::Node node_;
  std::string path_;
  bool ok_ = false;
  std::vector<std::string> known_;
};

// The items of a list (null: no items); an error and no items when it is not a list.
std::vector<Field> list_items(Diagnostics& d, const Field& f, std::string_view example);

// Each reader leaves `out` unchanged and reports an error when the value is not acceptable.
bool read_string(Diagnostics& d, const Field& f, std::string& out);
bool read_optional_string(Diagnostics& d, const Field& f, std::optional<std::string>& out);
bool read_bool(Diagnostics& d, const Field& f, bool& out);
bool read_unsigned(Diagnostics& d, const Field& f, unsigned& out, unsigned min, unsigned max);
bool read_port(Diagnostics& d, const Field& f, std::uint16_t& out);
bool read_size(Diagnostics& d, const Field& f, std::uint64_t& out);
bool read_duration(Diagnostics& d, const Field& f, std::chrono::milliseconds& out);

// The scalar, or nullopt (and an error) when the value is a list, a mapping or null.
std::optional<std::string> scalar(Diagnostics& d, const Field& f);

// " (did you mean X?)" when one of `options` is a close typo of `word`, else "".
std::string suggestion(std::string_view word, const std::vector<std::string>& options);

// `out` from one of `choices`: `"tsl" is not one of none, starttls, implicit`.
template <typename E>
bool read_enum(Diagnostics& d, const Field& f, E& out, std::initializer_list<std::pair<std::string_view, E>> choices) {
  auto text = scalar(d, f);
  if (!text) return false;
  std::string names;
  for (const auto& [name, value] : choices) {
    if (*text == name) {
      out = value;
      return true;
    }
    names += names.empty() ? "" : ", ";
    names += name;
  }
  std::vector<std::string> options;
  for (const auto& c : choices) options.emplace_back(c.first);
  d.error(f.line, f.path, "\"" + *text + "\" is not one of " + names + suggestion(*text, options));
  return false;
}

// A host name as RFC 1123 allows it: labels of letters, digits and hyphens, 1..63 characters,
// not starting or ending with a hyphen, 253 characters at most.
bool is_domain_name(std::string_view name);

}  // namespace mailhop::config::detail
