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

LoadResult load_string(std::string_view yaml, const std::string& name) {
  detail::Diagnostics d;
  d.file = name;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // "yaml-cpp: error at line …" is in what(); msg is the bare reason.
    d.error(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + e.msg);
    return LoadResult{std::nullopt, std::move(d.errors), {}};
  }
  Config config = detail::parse_config(root, d);
  config.source = name;
  detail::validate(config, d);

  // In file order; errors without a line (defaults) last.
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
  return result;
}

LoadResult load_file(const std::string& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", "is a directory, not a configuration file"}}, {}};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    int err = errno;
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", std::string("cannot read the file: ") + std::strerror(err)}}, {}};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return LoadResult{std::nullopt, {ConfigError{file, 0, "", "cannot read the file (I/O error)"}}, {}};
  }
  return load_string(text.str(), file);
}

std::string resolve_path(const std::optional<std::string>& from_command_line) {
  if (from_command_line && !from_command_line->empty()) return *from_command_line;
  if (const char* env = std::getenv("MAILHOP_CONFIG"); env && *env) return env;
  return "/etc/mailhop/mailhop.yaml";
}

}  // namespace mailhop::config
