// Client AUTH helpers (see mailhop/delivery/auth.hpp).
#include "mailhop/delivery/auth.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mailhop/util/base64.hpp"

namespace mailhop::delivery {

MechanismChoice choose_mechanism(config::RelayAuth wanted, const smtp::Capabilities& caps) {
  auto offered = [&] {
    std::string list;
    for (const auto& m : caps.auth) list += (list.empty() ? "" : " ") + m;
    return list.empty() ? std::string("none") : list;
  };
  switch (wanted) {
    case config::RelayAuth::automatic:
      if (caps.has_auth("PLAIN")) return {AuthMechanism::plain, {}};
      if (caps.has_auth("LOGIN")) return {AuthMechanism::login, {}};
      break;
    case config::RelayAuth::plain:
      if (caps.has_auth("PLAIN")) return {AuthMechanism::plain, {}};
      break;
    case config::RelayAuth::login:
      if (caps.has_auth("LOGIN")) return {AuthMechanism::login, {}};
      break;
    case config::RelayAuth::xoauth2:
      if (caps.has_auth("XOAUTH2")) return {AuthMechanism::xoauth2, {}};
      break;
    case config::RelayAuth::oauthbearer:
      if (caps.has_auth("OAUTHBEARER")) return {AuthMechanism::oauthbearer, {}};
      break;
  }
  if (caps.auth.empty()) return {std::nullopt, "the next hop does not offer AUTH"};
  return {std::nullopt, "the next hop offers no AUTH mechanism mailhop can use (offered: " + offered() + ")"};
}

std::optional<std::string> read_password(const config::Relay& relay, std::string& error) {
  if (relay.password_file) {
    std::ifstream in(*relay.password_file, std::ios::binary);
    if (!in) {
      error = "cannot read relay.password_file " + *relay.password_file + ": " + std::strerror(errno);
      return std::nullopt;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string password = buf.str();
    if (password.ends_with('\n')) password.pop_back();
    if (password.ends_with('\r')) password.pop_back();
    return password;
  }
  if (relay.password) return *relay.password;  // MAILHOP_RELAY_PASSWORD
  if (relay.password_env) {
    const char* value = std::getenv(relay.password_env->c_str());
    if (!value) {
      error = "environment variable " + *relay.password_env + " (relay.password_env) is not set";
      return std::nullopt;
    }
    return std::string(value);
  }
  error = "relay.username is set but neither relay.password_file nor relay.password_env is";
  return std::nullopt;
}

std::string plain_command(const std::string& user, const std::string& password) {
  std::string token;
  token += '\0';
  token += user;
  token += '\0';
  token += password;
  return "AUTH PLAIN " + util::base64_encode(token);
}

std::string xoauth2_response(const std::string& user, const std::string& token) {
  return "user=" + user + "\x01" + "auth=Bearer " + token + "\x01\x01";
}

std::string oauthbearer_response(const std::string& user, const std::string& host, unsigned port,
                                 const std::string& token) {
  std::string authzid;  // RFC 5801 §4 saslname
  for (char c : user) {
    if (c == ',')
      authzid += "=2C";
    else if (c == '=')
      authzid += "=3D";
    else
      authzid += c;
  }
  return "n,a=" + authzid + ",\x01" + "host=" + host + "\x01" + "port=" + std::to_string(port) + "\x01" +
         "auth=Bearer " + token + "\x01\x01";
}

std::string oauth_command(AuthMechanism mechanism, const std::string& initial_response) {
  return std::string(mechanism == AuthMechanism::xoauth2 ? "AUTH XOAUTH2 " : "AUTH OAUTHBEARER ") +
         util::base64_encode(initial_response);
}

std::string oauth_error_ack(AuthMechanism mechanism) {
  return mechanism == AuthMechanism::oauthbearer ? util::base64_encode("\x01") : std::string();
}

}  // namespace mailhop::delivery
