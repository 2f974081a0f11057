// Checks of a parsed configuration that no single value can tell: settings that depend on each
// other, listeners that need certificates or users, and the open-relay refusal. Each error
// points at the line of the key to change and says what to change.
//
// SECURITY: this is where a configuration that would relay for anyone is refused (issue 4,
// "No open relay, ever"): a listener reachable from other machines — a non-loopback address,
// or a loopback one behind the PROXY protocol, whose client addresses come from the proxy —
// without auth: required, while allowed_networks covers every address.
#include <cstdlib>

#include "mailhop/util/units.hpp"
#include "steps.hpp"

namespace mailhop::config::detail {
namespace {
namespace ip = boost::asio::ip;

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::optional<ip::address> host_address(const Listener& l) {
  boost::system::error_code ec;
  auto a = ip::make_address(l.host, ec);
  if (ec) return std::nullopt;
  return a;
}

bool is_loopback(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

// A network that lets every IPv4 or every IPv6 client in: 0.0.0.0/0, ::/0, and ::ffff:0:0/96
// or shorter (all IPv4 clients of a dual-stack socket).
bool covers_everyone(const Network& n) {
  if (n.is_everything()) return true;
  return n.address.is_v6() && n.prefix_length <= 96 && n.contains(ip::make_address("0.0.0.0")) &&
         n.contains(ip::make_address("255.255.255.255"));
}

// Why a socket on (a, a_port) cannot be bound next to one on (b, b_port), or "" when it can:
// the same address, or a wildcard (0.0.0.0, ::) and an address of its family on the same port.
std::string bind_conflict(const ip::address& a, std::uint16_t a_port, const ip::address& b, std::uint16_t b_port) {
  if (a_port != b_port) return "";
  if (a == b) return "is already used by";
  if (a.is_v4() == b.is_v4() && (a.is_unspecified() || b.is_unspecified())) {
    return "overlaps (a wildcard address listens on every address of its family)";
  }
  return "";
}

void check_hostname(const Config& c, Diagnostics& d) {
  if (d.lines.contains("hostname") || is_domain_name(c.hostname)) return;
  d.error(0, "hostname",
          "this machine's name " + quoted(c.hostname) +
              " is not a domain name; set hostname: to the name this relay announces (e.g. relay.example.org)");
}

void check_listeners(const Config& c, Diagnostics& d) {
  if (c.listen.empty()) {
    d.error(d.line_of("listen"), "listen", "has no listener (add e.g. - address: \"127.0.0.1:2525\")");
  }
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    const auto& l = c.listen[i];
    auto path = "listen[" + std::to_string(i) + "]";
    auto address = host_address(l);
    if (!address) continue;  // already reported
    for (std::size_t j = 0; j < i; ++j) {
      auto other = host_address(c.listen[j]);
      if (!other) continue;
      if (auto why = bind_conflict(*address, l.port, *other, c.listen[j].port); !why.empty()) {
        d.error(d.line_of(path + ".address"), path + ".address",
                quoted(l.address) + " " + why + " listen[" + std::to_string(j) + "] (" +
                    quoted(c.listen[j].address) + ")");
      }
    }
    if (l.tls != ListenerTls::none && (!c.tls.cert_file || !c.tls.key_file)) {
      d.error(d.line_of(path + ".tls"), path + ".tls",
              std::string(to_string(l.tls)) + " needs a server certificate: set tls.cert_file and tls.key_file");
    }
    if (l.auth != ListenerAuth::none && !c.auth.users_file) {
      d.error(d.line_of(path + ".auth"), path + ".auth",
              std::string(to_string(l.auth)) + " needs auth.users_file (the users who may log in)");
    }
    bool remote = !is_loopback(*address) || l.proxy_protocol;
    if (l.auth != ListenerAuth::none && l.tls == ListenerTls::none && !is_loopback(*address)) {
      // AUTH is offered only over TLS, except to loopback clients (issue 4).
      std::string why = "AUTH is offered only over TLS on a non-loopback address, and this listener has tls: none";
      if (l.auth == ListenerAuth::required) {
        d.error(d.line_of(path + ".auth"), path + ".auth",
                "required, but " + why + ", so no client could send mail; set tls: starttls or implicit");
      } else {
        d.warning(d.line_of(path + ".auth"), path + ".auth", "optional, but " + why + "; set tls: starttls or implicit");
      }
    }
    if (l.proxy_protocol && c.trusted_proxies.empty()) {
      d.error(d.line_of(path + ".proxy_protocol"), path + ".proxy_protocol",
              "true, but trusted_proxies is empty, so every connection would be refused; list the load balancer's "
              "addresses in trusted_proxies");
    }
    if (remote && l.auth != ListenerAuth::required) {
      for (std::size_t k = 0; k < c.allowed_networks.size(); ++k) {
        const auto& n = c.allowed_networks[k];
        if (!covers_everyone(n)) continue;
        auto key = "allowed_networks[" + std::to_string(k) + "]";
        d.error(d.line_of(key), key,
                quoted(n.text) + " would make " + path + " (" + quoted(l.address) + ", auth: " +
                    std::string(to_string(l.auth)) +
                    ") an open relay for anyone who can reach it; list only your own networks (e.g. 10.0.0.0/8), "
                    "or set auth: required on that listener");
      }
    }
  }
}

void check_tls_files(const Config& c, Diagnostics& d) {
  if (c.tls.cert_file && !c.tls.key_file) {
    d.error(d.line_of("tls.cert_file"), "tls.cert_file", "set without tls.key_file; set both");
  }
  if (c.tls.key_file && !c.tls.cert_file) {
    d.error(d.line_of("tls.key_file"), "tls.key_file", "set without tls.cert_file; set both");
  }
}

void check_oauth2(const Relay& r, Diagnostics& d) {
  const auto& o = *r.oauth2;
  auto line = [&](std::string_view key) { return d.line_of("relay.oauth2." + std::string(key)); };
  if (o.token_command) {
    if (o.token_url) {
      d.error(line("token_command"), "relay.oauth2.token_command",
              "set together with relay.oauth2.token_url; use one way to get tokens");
    }
    return;
  }
  if (!o.token_url) {
    d.error(line("token_url"), "relay.oauth2",
            "needs token_url (the identity provider's token endpoint) or token_command");
    return;
  }
  if (!o.client_id) d.error(line("client_id"), "relay.oauth2.client_id", "is required with token_url");
  if (o.grant == OAuth2Grant::refresh_token && !o.refresh_token_file) {
    d.error(line("grant"), "relay.oauth2.refresh_token_file", "is required with grant: refresh_token");
  }
  if (o.grant == OAuth2Grant::client_credentials && !o.client_secret_file) {
    d.error(line("grant"), "relay.oauth2.client_secret_file", "is required with grant: client_credentials");
  }
}

void check_relay(const Relay& r, Diagnostics& d) {
  auto line = [&](std::string_view key) { return d.line_of("relay." + std::string(key)); };
  bool oauth = r.auth == RelayAuth::xoauth2 || r.auth == RelayAuth::oauthbearer;
  bool has_password = r.password_file || r.password_env || r.password;
  if (r.password_file && r.password_env) {
    d.error(line("password_env"), "relay.password_env", "set together with relay.password_file; use one of them");
  }
  if (r.password && (r.password_file || r.password_env)) {
    d.error(0, "relay.password",
            std::string("set together with relay.") + (r.password_file ? "password_file" : "password_env") +
                "; use one of them");
  }
  if (r.password_env && !std::getenv(r.password_env->c_str())) {
    d.warning(line("password_env"), "relay.password_env",
              "the variable " + *r.password_env + " is not set here; it must be set where mailhop runs");
  }
  if (oauth) {
    auto mech = std::string(to_string(r.auth));
    if (!r.username) {
      d.error(line("auth"), "relay.username", "is required with relay.auth: " + mech + " (the mailbox to send as)");
    }
    if (!r.oauth2) {
      d.error(line("auth"), "relay.oauth2",
              "is required with relay.auth: " + mech + " (token_url, client_id, … or token_command)");
    } else {
      check_oauth2(r, d);
    }
    if (has_password) {
      std::string key = r.password_file ? "relay.password_file" : r.password_env ? "relay.password_env" : "relay.password";
      d.warning(d.line_of(key), key, "not used with relay.auth: " + mech);
    }
  } else {
    if (r.oauth2) {
      d.error(line("oauth2"), "relay.oauth2",
              "is only used with relay.auth: xoauth2 or oauthbearer (relay.auth is " +
                  std::string(to_string(r.auth)) + ")");
    }
    if (r.username && !has_password) {
      d.error(line("username"), "relay.username",
              "set, but no password: set relay.password_file (or relay.password_env, or the variable "
              "MAILHOP_RELAY_PASSWORD)");
    }
    if (!r.username && has_password) {
      auto key = r.password_file ? "relay.password_file" : r.password_env ? "relay.password_env" : "relay.password";
      d.error(d.line_of(key), key, "set, but relay.username is not; add the user name to log in as");
    }
    if (!r.username && r.auth != RelayAuth::automatic) {
      d.error(line("auth"), "relay.auth",
              std::string(to_string(r.auth)) + " needs relay.username and relay.password_file (or password_env)");
    }
  }
  if (r.host == Relay{}.host) {
    d.warning(line("host"), "relay.host",
              r.host + " is the placeholder of the example configuration; set the next hop that mail goes to");
  }
  if (r.username && r.tls == RelayTls::none) {
    d.warning(line("tls"), "relay.tls",
              "none: the password is sent without encryption; use this only for a next hop on this machine or a "
              "trusted network");
  }
  if (!r.verify && r.tls != RelayTls::none) {
    d.warning(line("verify"), "relay.verify",
              "false: the next hop's certificate is not checked, so anyone on the path can read the mail and the "
              "password");
  }
  if (r.tls == RelayTls::implicit && r.port == 587) {
    d.warning(line("port"), "relay.port", "587 is the STARTTLS port; implicit TLS is usually on port 465");
  }
  if ((r.tls == RelayTls::starttls || r.tls == RelayTls::opportunistic) && r.port == 465) {
    d.warning(line("port"), "relay.port", "465 is the implicit TLS port; use tls: implicit with it");
  }
}

void check_delivery(const Delivery& del, Diagnostics& d) {
  if (del.retry.initial > del.retry.max) {
    d.error(d.line_of("delivery.retry.initial"), "delivery.retry.initial",
            util::format_duration(del.retry.initial) + " is longer than delivery.retry.max (" +
                util::format_duration(del.retry.max) + "); the first wait must not exceed the longest");
  }
  if (del.retry.initial > del.retry.give_up_after) {
    d.error(d.line_of("delivery.retry.give_up_after"), "delivery.retry.give_up_after",
            util::format_duration(del.retry.give_up_after) + " is shorter than the first retry wait (" +
                util::format_duration(del.retry.initial) + "); messages would bounce before a second attempt");
  }
}

void check_admin(const Config& c, Diagnostics& d) {
  auto sa = parse_socket_address(c.admin.listen);
  if (!sa) return;  // already reported
  if (!is_loopback(sa->address) && !c.admin.token_file) {
    d.error(d.line_of("admin.listen"), "admin.listen",
            quoted(c.admin.listen) +
                " is reachable from other machines; set admin.token_file (requests then need the token) or listen "
                "on 127.0.0.1");
  }
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    auto address = host_address(c.listen[i]);
    if (!address) continue;
    if (auto why = bind_conflict(sa->address, sa->port, *address, c.listen[i].port); !why.empty()) {
      d.error(d.line_of("admin.listen"), "admin.listen",
              quoted(c.admin.listen) + " " + why + " listen[" + std::to_string(i) + "] (" +
                  quoted(c.listen[i].address) + ")");
    }
  }
}

}  // namespace

void validate(const Config& c, Diagnostics& d) {
  check_hostname(c, d);
  check_listeners(c, d);
  check_tls_files(c, d);
  check_relay(c.relay, d);
  check_delivery(c.delivery, d);
  check_admin(c, d);
}

}  // namespace mailhop::config::detail
