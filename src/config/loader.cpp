// Loading a configuration file: read, parse the YAML (syntax errors with their line), read the
// schema (schema.cpp), check the whole (validate.cpp), report every problem at once.
#include "mailhop/config/loader.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "steps.hpp"

namespace mailhop::config {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

std::string detail::machine_hostname() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  // Fully qualified only when the system says so itself; no DNS lookup at start-up.
  return name.data();
}

Config default_config() {
  Config c;
  c.hostname = detail::machine_hostname();
  c.listen = {Listener{"127.0.0.1:2525", "127.0.0.1", 2525, ListenerTls::none, ListenerAuth::none, false}};
  c.allowed_networks = {*Network::parse("127.0.0.0/8"), *Network::parse("::1/128")};
  return c;
}

namespace {

// The steps of loading one configuration: `root` read from `name` (null: no file), then the
// variables of `env`, the schema, the checks.
LoadResult load_tree(YAML::Node root, detail::Diagnostics& d, const Environment* env, const std::string& source) {
  if (env) detail::apply_environment(root, *env, d);
  Config config = detail::parse_config(root, d);
  config.source = source;
  if (env) detail::check_variables(*env, config, d);
  detail::validate(config, d);
  detail::attribute_to_variables(d);

  // In file order; errors without a line (defaults, variables) last.
  auto by_line = [](const ConfigError& a, const ConfigError& b) {
    return (a.line == 0 ? std::numeric_limits<int>::max() : a.line) <
           (b.line == 0 ? std::numeric_limits<int>::max() : b.line);
  };
  std::stable_sort(d.errors.begin(), d.errors.end(), by_line);
  std::stable_sort(d.warnings.begin(), d.warnings.end(), by_line);
  LoadResult result;
  if (d.errors.empty()) result.config = std::move(config);
  result.errors = std::move(d.errors);
  result.warnings = std::move(d.warnings);
  for (const auto& [key, line] : d.lines) {
    if (line > 0) result.sources[key] = d.file + ":" + std::to_string(line);
  }
  for (const auto& [key, variable] : d.variables) result.sources[key] = variable;
  return result;
}

LoadResult parse_string(std::string_view yaml, const std::string& name, const Environment* env) {
  detail::Diagnostics d;
  d.file = name;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // "yaml-cpp: error at line …" is in what(); msg is the bare reason.
    d.error(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + e.msg);
    return LoadResult{std::nullopt, std::move(d.errors), {}, {}};
  }
  return load_tree(root, d, env, name);
}

}  // namespace

LoadResult load_string(std::string_view yaml, const std::string& name) { return parse_string(yaml, name, nullptr); }

LoadResult load_string(std::string_view yaml, const std::string& name, const Environment& env) {
  return parse_string(yaml, name, &env);
}

LoadResult load_file(const std::string& file) { return load_file(file, process_environment()); }

LoadResult load_file(const std::string& file, const Environment& env) {
  if (file.empty()) {  // no file: the defaults and the environment
    detail::Diagnostics d;
    d.file = "(environment)";
    return load_tree(YAML::Node(), d, &env, "");
  }
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", "is a directory, not a configuration file"}}, {}, {}};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string why = std::string("cannot read the file: ") + std::strerror(err);
    if (err == ENOENT && file == "/etc/mailhop/mailhop.yaml") why += " (or set MAILHOP_RELAY_HOST, and other MAILHOP_* variables, to run without one)";
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", why}}, {}, {}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", "cannot read the file (I/O error)"}}, {}, {}};
  }
  return load_string(text.str(), file, env);
}

std::string resolve_path(const std::optional<std::string>& from_command_line) {
  if (from_command_line && !from_command_line->empty()) return *from_command_line;
  if (const char* env = std::getenv("MAILHOP_CONFIG"); env && *env) return env;
  const std::string standard = "/etc/mailhop/mailhop.yaml";
  std::error_code ec;
  const char* next_hop = std::getenv("MAILHOP_RELAY_HOST");
  if (next_hop && *next_hop && !std::filesystem::exists(standard, ec)) return "";  // environment only
  return standard;
}

}  // namespace mailhop::config
