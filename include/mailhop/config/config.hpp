// The configuration, as loaded and validated (see config/mailhop.yaml for every key and its
// default). A plain value type: copied into each component, swapped whole on reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "mailhop/util/log.hpp"

namespace mailhop::config {

using Duration = std::chrono::milliseconds;

// An address prefix such as 127.0.0.0/8 or ::1/128.
struct Network {
  boost::asio::ip::address address;  // the prefix, host bits zero
  unsigned prefix_length = 0;
  std::string text;  // as written
  bool contains(const boost::asio::ip::address& a) const;  // IPv4-mapped IPv6 matches IPv4 prefixes
  bool is_everything() const { return prefix_length == 0; }  // 0.0.0.0/0 or ::/0
};

enum class ListenerTls { none, starttls, implicit };
enum class ListenerAuth { none, optional, required };

struct Listener {
  std::string address;  // as written: "127.0.0.1:2525", "[::1]:2525"
  std::string host;     // "127.0.0.1", "::1"
  std::uint16_t port = 0;
  ListenerTls tls = ListenerTls::none;
  ListenerAuth auth = ListenerAuth::none;
  bool proxy_protocol = false;  // HAProxy PROXY v1/v2 header first, from trusted_proxies only
};

struct Limits {
  std::uint64_t max_message_size = 25ull * 1024 * 1024;
  unsigned max_recipients = 100;
  unsigned max_connections = 1000;
  unsigned max_connections_per_ip = 50;  // clients in allowed_networks are exempt
  unsigned max_errors = 10;              // then 421 4.7.0 and close
  Duration command_timeout = std::chrono::minutes(5);
  Duration data_timeout = std::chrono::minutes(10);
  Duration session_timeout = std::chrono::minutes(30);  // whole connection, not extended by traffic
};

struct TlsFiles {
  std::optional<std::string> cert_file;  // PEM, server certificate (chain)
  std::optional<std::string> key_file;   // PEM, its private key
};

struct Auth {
  std::optional<std::string> users_file;  // user:hash[:senders] lines
};

enum class RelayTls { starttls, implicit, opportunistic, none };
enum class RelayAuth { automatic, plain, login, xoauth2, oauthbearer };  // "auto" in YAML
enum class OAuth2Grant { refresh_token, client_credentials };

struct OAuth2 {
  std::optional<std::string> token_url;
  std::optional<std::string> client_id;
  std::optional<std::string> client_secret_file;
  std::optional<std::string> scope;
  OAuth2Grant grant = OAuth2Grant::refresh_token;
  std::optional<std::string> refresh_token_file;
  std::optional<std::string> ca_file;
  std::optional<std::string> token_command;
};

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};

struct RelayTimeouts {  // RFC 5321 §4.5.3.2 client timeouts
  Duration connect = std::chrono::seconds(30);
  Duration greeting = std::chrono::minutes(5);
  Duration command = std::chrono::minutes(5);   // EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET
  Duration data_init = std::chrono::minutes(2);
  Duration data_block = std::chrono::minutes(3);
  Duration data_end = std::chrono::minutes(10);
  Duration idle = std::chrono::seconds(60);     // an unused connection is closed (QUIT) after this
};

struct Relay {
  std::string host = "smtp.example.com";
  std::uint16_t port = 587;
  RelayTls tls = RelayTls::starttls;
  bool verify = true;
  std::optional<std::string> ca_file;
  std::optional<std::string> username;
  std::optional<std::string> password_file;
  std::optional<std::string> password_env;
  RelayAuth auth = RelayAuth::automatic;
  std::optional<OAuth2> oauth2;
  std::vector<Endpoint> fallback;
  RelayTimeouts timeouts;
};

struct Retry {
  Duration initial = std::chrono::minutes(1);
  Duration max = std::chrono::hours(1);
  Duration give_up_after = std::chrono::hours(24 * 5);
};

struct Delivery {
  unsigned workers = 16;
  unsigned max_connections = 4;
  Retry retry;
};

struct Admin {
  std::string listen = "127.0.0.1:8025";
  std::optional<std::string> token_file;
  Duration readiness_window = std::chrono::minutes(5);
};

struct Log {
  std::string level = "info";
  util::LogFormat format = util::LogFormat::text;
};

struct Config {
  std::string source;  // the file it was loaded from, as given ("" when none)
  std::string hostname;  // default: the machine's host name
  unsigned threads = 0;  // io_context threads; 0: the number of cores
  std::vector<Listener> listen;
  std::vector<Network> allowed_networks;
  std::vector<Network> trusted_proxies;
  Limits limits;
  std::string spool_path = "/var/spool/mailhop";
  TlsFiles tls;
  Auth auth;
  Relay relay;
  Delivery delivery;
  Admin admin;
  Log log;

  // true when `client` may relay without authenticating.
  bool may_relay_unauthenticated(const boost::asio::ip::address& client) const;
};

}  // namespace mailhop::config
