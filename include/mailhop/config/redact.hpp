// Redaction of secret values in what mailhop shows (`mailhop check`, logs of the effective
// configuration). A secret is a value whose key names a password, token or client secret; the
// names of files and variables that hold secrets (`password_file`, `password_env`) are not
// secrets and are shown, so an operator can see where a secret comes from.
#pragma once

#include <string>
#include <string_view>

namespace mailhop::config {

inline constexpr std::string_view redacted = "<redacted>";

// true for key paths such as "relay.password", "relay.oauth2.client_secret",
// "relay.oauth2.refresh_token", "admin.token"; false for "relay.password_file",
// "relay.password_env", "relay.oauth2.token_url", "relay.oauth2.token_command".
bool is_secret_key(std::string_view key_path);

// `value` itself, or `redacted` when `key_path` names a secret.
std::string redact(std::string_view key_path, std::string_view value);

}  // namespace mailhop::config
