// Small behaviour of the Config value type: the relay decision and the names of the enum values.
//
// SECURITY: may_relay_unauthenticated is the open-relay gate for clients that did not
// authenticate (issue 4, "No open relay, ever"): only addresses in allowed_networks pass.
#include "mailhop/config/config.hpp"

#include <algorithm>

namespace mailhop::config {

bool Config::may_relay_unauthenticated(const boost::asio::ip::address& client) const {
  return std::any_of(allowed_networks.begin(), allowed_networks.end(),
                     [&](const Network& n) { return n.contains(client); });
}

std::string_view to_string(ListenerTls v) {
  switch (v) {
    case ListenerTls::none: return "none";
    case ListenerTls::starttls: return "starttls";
    case ListenerTls::implicit: return "implicit";
  }
  return "?";
}

std::string_view to_string(ListenerAuth v) {
  switch (v) {
    case ListenerAuth::none: return "none";
    case ListenerAuth::optional: return "optional";
    case ListenerAuth::required: return "required";
  }
  return "?";
}

std::string_view to_string(RelayTls v) {
  switch (v) {
    case RelayTls::starttls: return "starttls";
    case RelayTls::implicit: return "implicit";
    case RelayTls::opportunistic: return "opportunistic";
    case RelayTls::none: return "none";
  }
  return "?";
}

std::string_view to_string(RelayAuth v) {
  switch (v) {
    case RelayAuth::automatic: return "auto";
    case RelayAuth::plain: return "plain";
    case RelayAuth::login: return "login";
    case RelayAuth::xoauth2: return "xoauth2";
    case RelayAuth::oauthbearer: return "oauthbearer";
  }
  return "?";
}

std::string_view to_string(OAuth2Grant v) {
  switch (v) {
    case OAuth2Grant::refresh_token: return "refresh_token";
    case OAuth2Grant::client_credentials: return "client_credentials";
  }
  return "?";
}

std::string_view to_string(util::LogFormat v) {
  switch (v) {
    case util::LogFormat::text: return "text";
    case util::LogFormat::json: return "json";
  }
  return "?";
}

}  // namespace mailhop::config
