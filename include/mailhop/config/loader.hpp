// Loading and validating the YAML configuration. Every problem is reported as
// "FILE:LINE: key.path: what is wrong" (LINE counts from 1), all of them at once; an unknown
// key is an error, so a typo never passes silently.
#pragma once

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

struct LoadResult {
  std::optional<Config> config;  // set when there are no errors
  std::vector<ConfigError> errors;    // sorted by line
  std::vector<ConfigError> warnings;  // allowed but worth a look (verify: false, AUTH in clear)
};

// The configuration when the file sets nothing: the defaults of config.hpp plus a listener on
// 127.0.0.1:2525, allowed_networks 127.0.0.0/8 and ::1/128, and the machine's host name.
Config default_config();

// `file` as given on the command line; it is repeated as given in errors.
LoadResult load_file(const std::string& file);
// For tests and for `check` of a string: `name` stands for the file in errors.
LoadResult load_string(std::string_view yaml, const std::string& name);

// The file to use: -c FILE when given, else $MAILHOP_CONFIG, else /etc/mailhop/mailhop.yaml.
std::string resolve_path(const std::optional<std::string>& from_command_line);

// The effective configuration as YAML, every key with its value, secrets redacted.
std::string describe(const Config& config);

}  // namespace mailhop::config
