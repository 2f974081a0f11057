// Internal to the config module: the steps of loading a file, in order.
#pragma once

#include <string>

#include "reader.hpp"

namespace mailhop::config::detail {

// environment.cpp: the MAILHOP_* variables of `env` written into the YAML tree before it is
// read (creating sections as needed), each key they set remembered in d.variables. Values stay
// text, so schema.cpp checks them exactly as it checks the file's.
void apply_environment(YAML::Node& root, const Environment& env, Diagnostics& d);

// environment.cpp: a MAILHOP_* variable that looks like a key but is none is an error (a typo
// must not pass); the program's own variables and the one relay.password_env names are not.
void check_variables(const Environment& env, const Config& config, Diagnostics& d);

// environment.cpp: errors and warnings about keys that variables set are reported as
// "VARIABLE: …" instead of "FILE:LINE: …".
void attribute_to_variables(Diagnostics& d);

// schema.cpp: the YAML tree into a Config (starting from default_config()), reporting unknown
// keys and values of the wrong type or form.
Config parse_config(const YAML::Node& root, Diagnostics& d);

// validate.cpp: what a value alone cannot tell: ranges that depend on each other, listeners
// that need certificates or users, an open relay. Errors point at the line of the key.
void validate(const Config& config, Diagnostics& d);

// The machine's host name (gethostname), "localhost" when it has none.
std::string machine_hostname();

}  // namespace mailhop::config::detail
