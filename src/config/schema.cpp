// The configuration schema: which keys exist, of which type, in which section (see
// config/mailhop.yaml for their meaning). Reads the YAML tree into a Config; a key this file
// does not ask for is reported as unknown, so a typo never passes silently.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "steps.hpp"

namespace mailhop::config::detail {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_ip_address(const std::string& text) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(text, ec);
  return !ec;
}

bool is_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

// "smtp.example.com:587", "192.0.2.1:25", "[2001:db8::1]:25".
std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(host, ec);
    if (ec) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (!is_domain_name(host)) return std::nullopt;  // also admits dotted IPv4 addresses
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return std::nullopt;
  }
  return Endpoint{host, static_cast<std::uint16_t>(port)};
}

void parse_listener(Diagnostics& d, const Field& item, Listener& l) {
  MapReader m(d, item.node, item.path, item.line);
  if (auto f = m.get("address")) {
    std::string text, why;
    if (read_string(d, *f, text)) {
      if (auto sa = parse_socket_address(text, &why)) {
        l.address = text;
        l.host = sa->address.to_string();
        l.port = sa->port;
      } else {
        d.error(f->line, f->path, why);
      }
    }
  } else if (!item.node.IsDefined() || item.node.IsNull() || item.node.IsMap()) {
    d.error(item.line, item.path, "has no address (add e.g. address: \"127.0.0.1:2525\")");
  }
  if (auto f = m.get("tls")) {
    read_enum(d, *f, l.tls,
              {{"none", ListenerTls::none}, {"starttls", ListenerTls::starttls}, {"implicit", ListenerTls::implicit}});
  }
  if (auto f = m.get("auth")) {
    read_enum(d, *f, l.auth,
              {{"none", ListenerAuth::none}, {"optional", ListenerAuth::optional}, {"required", ListenerAuth::required}});
  }
  if (auto f = m.get("proxy_protocol")) read_bool(d, *f, l.proxy_protocol);
  m.finish();
}

void parse_networks(Diagnostics& d, const Field& f, std::vector<Network>& out) {
  out.clear();
  for (const auto& item : list_items(d, f, "[\"127.0.0.0/8\", \"::1/128\"]")) {
    std::string text, why;
    if (!read_string(d, item, text)) continue;
    if (auto n = Network::parse(text, &why)) {
      out.push_back(std::move(*n));
    } else {
      d.error(item.line, item.path, why);
    }
  }
}

void parse_limits(Diagnostics& d, const Field& section, Limits& l) {
  MapReader m(d, section.node, section.path, section.line);
  constexpr unsigned most = 1'000'000'000;
  if (auto f = m.get("max_message_size")) read_size(d, *f, l.max_message_size);
  if (auto f = m.get("max_recipients")) read_unsigned(d, *f, l.max_recipients, 1, most);
  if (auto f = m.get("max_connections")) read_unsigned(d, *f, l.max_connections, 1, most);
  if (auto f = m.get("max_connections_per_ip")) read_unsigned(d, *f, l.max_connections_per_ip, 1, most);
  if (auto f = m.get("max_errors")) read_unsigned(d, *f, l.max_errors, 1, most);
  if (auto f = m.get("command_timeout")) read_duration(d, *f, l.command_timeout);
  if (auto f = m.get("data_timeout")) read_duration(d, *f, l.data_timeout);
  if (auto f = m.get("session_timeout")) read_duration(d, *f, l.session_timeout);
  m.finish();
}

void parse_oauth2(Diagnostics& d, const Field& section, std::optional<OAuth2>& out) {
  if (section.node.IsNull()) {
    out.reset();
    return;
  }
  OAuth2 o;
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("token_url")) {
    if (read_optional_string(d, *f, o.token_url) && o.token_url && !o.token_url->starts_with("https://")) {
      d.error(f->line, f->path, quoted(*o.token_url) + " is not an https:// URL (tokens are only fetched over TLS)");
    }
  }
  if (auto f = m.get("client_id")) read_optional_string(d, *f, o.client_id);
  if (auto f = m.get("client_secret_file")) read_optional_string(d, *f, o.client_secret_file);
  if (auto f = m.get("scope")) read_optional_string(d, *f, o.scope);
  if (auto f = m.get("grant")) {
    read_enum(d, *f, o.grant,
              {{"refresh_token", OAuth2Grant::refresh_token}, {"client_credentials", OAuth2Grant::client_credentials}});
  }
  if (auto f = m.get("refresh_token_file")) read_optional_string(d, *f, o.refresh_token_file);
  if (auto f = m.get("ca_file")) read_optional_string(d, *f, o.ca_file);
  if (auto f = m.get("token_command")) read_optional_string(d, *f, o.token_command);
  m.finish();
  out = std::move(o);
}

void parse_relay_timeouts(Diagnostics& d, const Field& section, RelayTimeouts& t) {
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("connect")) read_duration(d, *f, t.connect);
  if (auto f = m.get("greeting")) read_duration(d, *f, t.greeting);
  if (auto f = m.get("command")) read_duration(d, *f, t.command);
  if (auto f = m.get("data_init")) read_duration(d, *f, t.data_init);
  if (auto f = m.get("data_block")) read_duration(d, *f, t.data_block);
  if (auto f = m.get("data_end")) read_duration(d, *f, t.data_end);
  if (auto f = m.get("idle")) read_duration(d, *f, t.idle);
  m.finish();
}

void parse_relay(Diagnostics& d, const Field& section, Relay& r) {
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("host")) {
    std::string host;
    if (read_string(d, *f, host)) {
      if (is_domain_name(host) || is_ip_address(host)) {
        r.host = host;
      } else {
        d.error(f->line, f->path, quoted(host) + " is not a host name or IP address (write the port in relay.port)");
      }
    }
  }
  if (auto f = m.get("port")) read_port(d, *f, r.port);
  if (auto f = m.get("tls")) {
    read_enum(d, *f, r.tls,
              {{"starttls", RelayTls::starttls},
               {"implicit", RelayTls::implicit},
               {"opportunistic", RelayTls::opportunistic},
               {"none", RelayTls::none}});
  }
  if (auto f = m.get("verify")) read_bool(d, *f, r.verify);
  if (auto f = m.get("ca_file")) read_optional_string(d, *f, r.ca_file);
  if (auto f = m.get("username")) read_optional_string(d, *f, r.username);
  if (auto f = m.get("password_file")) read_optional_string(d, *f, r.password_file);
  if (auto f = m.get("password")) {
    // Only the environment may give a password itself (MAILHOP_RELAY_PASSWORD). The value is
    // never quoted in an error.
    if (d.variables.contains(f->path)) {
      read_optional_string(d, *f, r.password);
    } else if (!f->node.IsNull()) {
      d.error(f->line, f->path,
              "a password is never written in the configuration file: put it in a file only mailhop can read "
              "and set relay.password_file, or set the environment variable MAILHOP_RELAY_PASSWORD");
    }
  }
  if (auto f = m.get("password_env")) {
    std::optional<std::string> name;
    if (read_optional_string(d, *f, name)) {
      if (name && !is_variable_name(*name)) {
        d.error(f->line, f->path,
                quoted(*name) + " is not the name of an environment variable (letters, digits and _, e.g. SMTP_PASSWORD)");
      } else {
        r.password_env = name;
      }
    }
  }
  if (auto f = m.get("auth")) {
    read_enum(d, *f, r.auth,
              {{"auto", RelayAuth::automatic},
               {"plain", RelayAuth::plain},
               {"login", RelayAuth::login},
               {"xoauth2", RelayAuth::xoauth2},
               {"oauthbearer", RelayAuth::oauthbearer}});
  }
  if (auto f = m.get("oauth2")) parse_oauth2(d, *f, r.oauth2);
  if (auto f = m.get("fallback")) {
    r.fallback.clear();
    for (const auto& item : list_items(d, *f, "[\"backup.example.com:587\"]")) {
      std::string text;
      if (!read_string(d, item, text)) continue;
      if (auto e = parse_endpoint(text)) {
        r.fallback.push_back(std::move(*e));
      } else {
        d.error(item.line, item.path,
                quoted(text) + " is not host:port (use e.g. \"backup.example.com:587\" or \"[2001:db8::1]:25\")");
      }
    }
  }
  if (auto f = m.get("timeouts")) parse_relay_timeouts(d, *f, r.timeouts);
  m.finish();
}

void parse_delivery(Diagnostics& d, const Field& section, Delivery& del) {
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("workers")) read_unsigned(d, *f, del.workers, 1, 10'000);
  if (auto f = m.get("max_connections")) read_unsigned(d, *f, del.max_connections, 1, 10'000);
  if (auto f = m.get("retry")) {
    MapReader retry(d, f->node, f->path, f->line);
    if (auto g = retry.get("initial")) read_duration(d, *g, del.retry.initial);
    if (auto g = retry.get("max")) read_duration(d, *g, del.retry.max);
    if (auto g = retry.get("give_up_after")) read_duration(d, *g, del.retry.give_up_after);
    retry.finish();
  }
  if (auto f = m.get("shutdown_grace")) read_duration(d, *f, del.shutdown_grace);
  m.finish();
}

void parse_admin(Diagnostics& d, const Field& section, Admin& a) {
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("listen")) {
    std::string text, why;
    if (read_string(d, *f, text)) {
      if (parse_socket_address(text, &why)) {
        a.listen = text;
      } else {
        d.error(f->line, f->path, why);
      }
    }
  }
  if (auto f = m.get("token_file")) read_optional_string(d, *f, a.token_file);
  if (auto f = m.get("readiness_window")) read_duration(d, *f, a.readiness_window);
  m.finish();
}

void parse_log(Diagnostics& d, const Field& section, Log& l) {
  MapReader m(d, section.node, section.path, section.line);
  if (auto f = m.get("level")) {
    std::string level = l.level;
    read_enum(d, *f, level,
              {{"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}});
    l.level = level;
  }
  if (auto f = m.get("format")) {
    read_enum(d, *f, l.format, {{"text", util::LogFormat::text}, {"json", util::LogFormat::json}});
  }
  m.finish();
}

}  // namespace

Config parse_config(const YAML::Node& root, Diagnostics& d) {
  Config c = default_config();
  MapReader top(d, root, "", 1);
  if (auto f = top.get("hostname")) {
    std::string name;
    if (read_string(d, *f, name)) {
      if (is_domain_name(name)) {
        c.hostname = name;
      } else {
        d.error(f->line, f->path,
                quoted(name) + " is not a domain name (letters, digits, hyphens and dots, e.g. relay.example.org)");
      }
    }
  }
  if (auto f = top.get("threads")) read_unsigned(d, *f, c.threads, 0, 1024);
  if (auto f = top.get("listen")) {
    c.listen.clear();
    for (const auto& item : list_items(d, *f, "[{address: \"127.0.0.1:2525\"}]")) {
      Listener l;
      parse_listener(d, item, l);
      c.listen.push_back(std::move(l));
    }
  }
  if (auto f = top.get("allowed_networks")) parse_networks(d, *f, c.allowed_networks);
  if (auto f = top.get("trusted_proxies")) parse_networks(d, *f, c.trusted_proxies);
  if (auto f = top.get("limits")) parse_limits(d, *f, c.limits);
  if (auto f = top.get("spool")) {
    MapReader m(d, f->node, f->path, f->line);
    if (auto g = m.get("path")) {
      std::string path;
      if (read_string(d, *g, path)) {
        if (path.empty()) {
          d.error(g->line, g->path, "is empty (use e.g. /var/spool/mailhop)");
        } else {
          c.spool_path = path;
        }
      }
    }
    m.finish();
  }
  if (auto f = top.get("tls")) {
    MapReader m(d, f->node, f->path, f->line);
    if (auto g = m.get("cert_file")) read_optional_string(d, *g, c.tls.cert_file);
    if (auto g = m.get("key_file")) read_optional_string(d, *g, c.tls.key_file);
    m.finish();
  }
  if (auto f = top.get("auth")) {
    MapReader m(d, f->node, f->path, f->line);
    if (auto g = m.get("users_file")) read_optional_string(d, *g, c.auth.users_file);
    m.finish();
  }
  if (auto f = top.get("relay")) parse_relay(d, *f, c.relay);
  if (auto f = top.get("delivery")) parse_delivery(d, *f, c.delivery);
  if (auto f = top.get("admin")) parse_admin(d, *f, c.admin);
  if (auto f = top.get("log")) parse_log(d, *f, c.log);
  top.finish();
  return c;
}

}  // namespace mailhop::config::detail
