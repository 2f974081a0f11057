// The configuration, as loaded and validated (see config/mailhop.yaml for every key and its
// default). A plain value type: copied into each component, swapped whole on reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

  // "10.0.0.0/8", "2001:db8::/32", or a single address ("192.0.2.1" is 192.0.2.1/32). nullopt
  // with `why` set when it is not one (bad address, prefix out of range, host bits set).
  static std::optional<Network> parse(std::string_view text, std::string* why = nullptr);
  friend bool operator==(const Network&, const Network&) = default;
};

// "127.0.0.1:2525" or "[::1]:2525": what listen and admin.listen take.
struct SocketAddress {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
};
// nullopt with `why` set (in words for the user) when `text` is not an IPv4 or [IPv6] address
// with a port in 1..65535.
std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* why = nullptr);

enum class ListenerTls { none, starttls, implicit };
enum class ListenerAuth { none, optional, required };

struct Listener {
  std::string address;  // as written: "127.0.0.1:2525", "[::1]:2525"
  std::string host;     // "127.0.0.1", "::1"
  std::uint16_t port = 0;
  ListenerTls tls = ListenerTls::none;
  ListenerAuth auth = ListenerAuth::none;
  bool proxy_protocol = false;  // HAProxy PROXY v1/v2 header first, from trusted_proxies only
  friend bool operator==(const Listener&, const Listener&) = default;
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
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct TlsFiles {
  std::optional<std::string> cert_file;  // PEM, server certificate (chain)
  std::optional<std::string> key_file;   // PEM, its private key
  friend bool operator==(const TlsFiles&, const TlsFiles&) = default;
};

struct Auth {
  std::optional<std::string> users_file;  // user:hash[:senders] lines
  friend bool operator==(const Auth&, const Auth&) = default;
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
  friend bool operator==(const OAuth2&, const OAuth2&) = default;
};

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct RelayTimeouts {  // RFC 5321 §4.5.3.2 client timeouts
  Duration connect = std::chrono::seconds(30);
  Duration greeting = std::chrono::minutes(5);
  Duration command = std::chrono::minutes(5);   // EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET
  Duration data_init = std::chrono::minutes(2);
  Duration data_block = std::chrono::minutes(3);
  Duration data_end = std::chrono::minutes(10);
  Duration idle = std::chrono::seconds(60);     // an unused connection is closed (QUIT) after this
  friend bool operator==(const RelayTimeouts&, const RelayTimeouts&) = default;
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
  // A secret given directly, only ever from the environment (MAILHOP_RELAY_PASSWORD): the
  // YAML file refuses it. At most one of password_file, password_env and password is set.
  std::optional<std::string> password;
  RelayAuth auth = RelayAuth::automatic;
  std::optional<OAuth2> oauth2;
  std::vector<Endpoint> fallback;
  RelayTimeouts timeouts;
  friend bool operator==(const Relay&, const Relay&) = default;
};

struct Retry {
  Duration initial = std::chrono::minutes(1);
  Duration max = std::chrono::hours(1);
  Duration give_up_after = std::chrono::hours(24 * 5);
  friend bool operator==(const Retry&, const Retry&) = default;
};

struct Delivery {
  unsigned workers = 16;
  unsigned max_connections = 4;
  Retry retry;
  // SIGTERM: a transaction in progress (after MAIL) may finish for this long; then it is
  // abandoned and its message stays queued.
  Duration shutdown_grace = std::chrono::seconds(10);
  friend bool operator==(const Delivery&, const Delivery&) = default;
};

struct Admin {
  std::string listen = "127.0.0.1:8025";
  std::optional<std::string> token_file;
  Duration readiness_window = std::chrono::minutes(5);
  friend bool operator==(const Admin&, const Admin&) = default;
};

struct Log {
  std::string level = "info";
  util::LogFormat format = util::LogFormat::text;
  friend bool operator==(const Log&, const Log&) = default;
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
  friend bool operator==(const Config&, const Config&) = default;
};

// The names used in the YAML file ("starttls", "auto", "refresh_token", …).
std::string_view to_string(ListenerTls v);
std::string_view to_string(ListenerAuth v);
std::string_view to_string(RelayTls v);
std::string_view to_string(RelayAuth v);
std::string_view to_string(OAuth2Grant v);
std::string_view to_string(util::LogFormat v);

// "smtp.example.com:587", "[2001:db8::1]:25": how an endpoint is written in the file.
std::string to_string(const Endpoint& e);

}  // namespace mailhop::config
