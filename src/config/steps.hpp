// Internal to the config module: the steps of loading a file, in order.
#pragma once

#include <string>

#include "reader.hpp"

namespace mailhop::config::detail {

// schema.cpp: the YAML tree into a Config (starting from default_config()), reporting unknown
// keys and values of the wrong type or form.
Config parse_config(const YAML::Node& root, Diagnostics& d);

// validate.cpp: what a value alone cannot tell: ranges that depend on each other, listeners
// that need certificates or users, an open relay. Errors point at the line of the key.
void validate(const Config& config, Diagnostics& d);

// The machine's host name (gethostname), "localhost" when it has none.
std::string machine_hostname();

}  // namespace mailhop::config::detail
