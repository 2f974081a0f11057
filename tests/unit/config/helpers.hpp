// Shared by the config unit tests: load a YAML string and look at the messages.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "mailhop/config/loader.hpp"

namespace mailhop::config::test {

inline std::vector<std::string> messages(const std::vector<ConfigError>& list) {
  std::vector<std::string> out;
  for (const auto& e : list) out.push_back(e.to_string());
  return out;
}

// config/mailhop.yaml of this source tree. (Not found from __FILE__: ccache's base_dir makes that
// path relative to the build directory.)
inline std::string default_file() { return std::string(MAILHOP_SOURCE_DIR) + "/config/mailhop.yaml"; }

// Every error of loading `yaml` as the file "t.yaml", as "t.yaml:LINE: key: message".
inline std::vector<std::string> errors(const std::string& yaml) {
  return messages(load_string(yaml, "t.yaml").errors);
}

inline std::vector<std::string> warnings(const std::string& yaml) {
  return messages(load_string(yaml, "t.yaml").warnings);
}

// The one configuration `yaml` gives; fails the test with the errors when there are any.
inline Config load_ok(const std::string& yaml) {
  auto result = load_string(yaml, "t.yaml");
  INFO(::Catch::Detail::stringify(messages(result.errors)));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  return *result.config;
}

}  // namespace mailhop::config::test
