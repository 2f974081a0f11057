// Loading and validating the YAML configuration. Every problem is reported as
// "FILE:LINE: key.path: what is wrong" (LINE counts from 1), all of them at once; an unknown
// key is an error, so a typo never passes silently.
//
// Environment overrides: every key can be set by the variable MAILHOP_ + its path in upper
// case joined by _ (relay.host: MAILHOP_RELAY_HOST); it wins over the file. A problem with a
// value from a variable is reported as "VARIABLE: what is wrong". See environment.cpp.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailhop/config/config.hpp"

namespace mailhop::config {

struct ConfigError {
  std::string file;
  int line = 0;      // 0 when the error has no place (a missing file)
  std::string key;   // "limits.max_message_size", "listen[0].tls"
  std::string message;
  std::string to_string() const;  // "FILE:LINE: key: message"
};

// Where each effective value came from, by key path ("relay.host", "listen[0].tls",
// "allowed_networks"): "FILE:LINE", or the name of the environment variable that set it. A key
// that is not listed has its default value.
using Sources = std::map<std::string, std::string, std::less<>>;

struct LoadResult {
  std::optional<Config> config;  // set when there are no errors
  std::vector<ConfigError> errors;    // sorted by line; those from variables last
  std::vector<ConfigError> warnings;  // allowed but worth a look (verify: false, AUTH in clear)
  Sources sources;
};

// Environment variables, name -> value.
using Environment = std::map<std::string, std::string, std::less<>>;
// This process's environment (environ).
Environment process_environment();

// The configuration when the file sets nothing: the defaults of config.hpp plus a listener on
// 127.0.0.1:2525, allowed_networks 127.0.0.0/8 and ::1/128, and the machine's host name.
Config default_config();

// `file` as given on the command line; it is repeated as given in errors. The process's
// MAILHOP_* variables override what the file says. `file` empty: no file at all, the defaults
// with the environment's overrides (see resolve_path).
LoadResult load_file(const std::string& file);
LoadResult load_file(const std::string& file, const Environment& env);
// For tests and for `check` of a string: `name` stands for the file in errors. The first form
// ignores the environment.
LoadResult load_string(std::string_view yaml, const std::string& name);
LoadResult load_string(std::string_view yaml, const std::string& name, const Environment& env);

// The file to use: -c FILE when given, else $MAILHOP_CONFIG, else /etc/mailhop/mailhop.yaml —
// unless that file does not exist and MAILHOP_RELAY_HOST is set: then "" (no file; the
// configuration comes from the defaults and the environment).
std::string resolve_path(const std::optional<std::string>& from_command_line);

// The variable that overrides a key: "delivery.retry.initial" -> "MAILHOP_DELIVERY_RETRY_INITIAL".
std::string variable_name(std::string_view key_path);
// Every key path that a variable can set (leaves, and the lists listen, allowed_networks,
// trusted_proxies, relay.fallback), in the order of config/mailhop.yaml.
const std::vector<std::string>& environment_keys();
// The variables mailhop reads for itself besides the keys' (MAILHOP_CONFIG); the variable
// that relay.password_env names is allowed too.
const std::vector<std::string>& program_variables();

// The effective configuration as YAML, every key with its value, secrets redacted. With
// `sources`, each value that is not a default is followed by a comment saying where it came
// from (# FILE:LINE or # MAILHOP_…).
std::string describe(const Config& config);
std::string describe(const Config& config, const Sources& sources);

}  // namespace mailhop::config
