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

enum class AuthMechanism { plain, login, xoauth2, oauthbearer };

struct MechanismChoice {
  std::optional<AuthMechanism> mechanism;
  std::string error;  // when none fits: "the next hop offers no AUTH mechanism mailhop can use (offered: CRAM-MD5)"
};

// relay.auth `auto`: PLAIN when offered, else LOGIN; `plain` / `login` / `xoauth2` /
// `oauthbearer`: that one, if offered.
MechanismChoice choose_mechanism(config::RelayAuth wanted, const smtp::Capabilities& caps);

// The password from relay.password_file (one trailing newline stripped) or the environment
// variable relay.password_env. On failure nullopt and `error` says why (never the password).
std::optional<std::string> read_password(const config::Relay& relay, std::string& error);

// "AUTH PLAIN <base64(\0user\0password)>" (RFC 4616), without CRLF.
std::string plain_command(const std::string& user, const std::string& password);

// The XOAUTH2 initial response (Google's and Microsoft's SASL XOAUTH2), before base64:
// "user=" USER ^A "auth=Bearer " TOKEN ^A ^A.
std::string xoauth2_response(const std::string& user, const std::string& token);

// The OAUTHBEARER initial response (RFC 7628 §3.1), before base64, with the authzid set to
// `user` (Gmail needs it): "n,a=" USER "," ^A "host=" HOST ^A "port=" PORT ^A "auth=Bearer "
// TOKEN ^A ^A. ',' and '=' in USER are escaped as =2C and =3D (RFC 5801 saslname).
std::string oauthbearer_response(const std::string& user, const std::string& host, unsigned port,
                                 const std::string& token);

// "AUTH XOAUTH2 <base64>" / "AUTH OAUTHBEARER <base64>", without CRLF.
std::string oauth_command(AuthMechanism mechanism, const std::string& initial_response);

// What a client answers to the server's 334 error challenge after an OAuth initial response:
// an empty line for XOAUTH2, base64(^A) for OAUTHBEARER (RFC 7628 §3.2.3). The server then
// sends its final 535.
std::string oauth_error_ack(AuthMechanism mechanism);

}  // namespace mailhop::delivery
