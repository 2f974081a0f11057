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
    case config::RelayAuth::oauthbearer:
      return {std::nullopt, "relay.auth " + std::string(wanted == config::RelayAuth::xoauth2 ? "xoauth2" : "oauthbearer") +
                                " is not supported by this build"};
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

}  // namespace mailhop::delivery
