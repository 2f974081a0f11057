// Client AUTH (RFC 4954) pieces that need no socket: which mechanism to use, the initial
// responses, and reading the password. The exchange itself is in relay_client.cpp.
//
// SECURITY: the strings built here hold credentials; callers never log them.
#pragma once

#include <optional>
#include <string>

#include "mailhop/config/config.hpp"
#include "mailhop/smtp/extensions.hpp"

namespace mailhop::delivery {

enum class AuthMechanism { plain, login };

struct MechanismChoice {
  std::optional<AuthMechanism> mechanism;
  std::string error;  // when none fits: "the next hop offers no AUTH mechanism mailhop can use (offered: CRAM-MD5)"
};

// relay.auth `auto`: PLAIN when offered, else LOGIN; `plain` / `login`: that one, if offered.
MechanismChoice choose_mechanism(config::RelayAuth wanted, const smtp::Capabilities& caps);

// The password from relay.password_file (one trailing newline stripped) or the environment
// variable relay.password_env. On failure nullopt and `error` says why (never the password).
std::optional<std::string> read_password(const config::Relay& relay, std::string& error);

// "AUTH PLAIN <base64(\0user\0password)>" (RFC 4616), without CRLF.
std::string plain_command(const std::string& user, const std::string& password);

}  // namespace mailhop::delivery
