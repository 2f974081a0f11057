// describe(): the effective configuration as YAML loads back into an equal Config and never
// shows a secret; the redaction rule itself.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "helpers.hpp"
#include "mailhop/config/redact.hpp"

using namespace mailhop::config;
using namespace mailhop::config::test;
using Catch::Matchers::Contains;

namespace {

// describe(c) loaded again, with the same source name.
Config round_trip(const Config& c) {
  auto again = load_string(describe(c), c.source);
  INFO(describe(c));
  INFO(Catch::Detail::stringify(messages(again.errors)));
  REQUIRE(again.config);
  return *again.config;
}

const char* full = R"(hostname: relay.example.org
threads: 3
listen:
  - address: "0.0.0.0:587"
    tls: starttls
    auth: required
  - address: "[::1]:2525"
    proxy_protocol: true
  - address: "127.0.0.1:465"
    tls: implicit
    auth: optional
allowed_networks: ["127.0.0.0/8", "::1/128", "192.168.0.0/16", "10.0.0.5"]
trusted_proxies: ["::1/128"]
limits: {max_message_size: 1000, max_recipients: 7, max_errors: 3, command_timeout: 1500ms, session_timeout: 2h}
spool: {path: "var/spool with space"}
tls: {cert_file: /etc/c.pem, key_file: /etc/k.pem}
auth: {users_file: /etc/users}
relay:
  host: "2001:db8::25"
  port: 465
  tls: implicit
  verify: false
  ca_file: "null"
  username: "yes"
  auth: oauthbearer
  oauth2: {token_url: "https://idp.example/token", client_id: id, client_secret_file: /s, scope: "a b",
           grant: client_credentials}
  fallback: ["b.example.org:25", "[2001:db8::26]:465"]
  timeouts: {connect: 1s, idle: 2d}
delivery: {workers: 1, max_connections: 9, retry: {initial: 10s, max: 10s, give_up_after: 1h}}
admin: {listen: "[::1]:8025", token_file: /t, readiness_window: 90s}
log: {level: error, format: json}
)";

}  // namespace

TEST_CASE("describe() round-trips: loading its output gives an equal config") {
  SECTION("defaults") {
    auto c = load_ok("");
    CHECK(round_trip(c) == c);
  }
  SECTION("the documented default file") {
    auto result = load_file(default_file());
    REQUIRE(result.config);
    CHECK(round_trip(*result.config) == *result.config);
  }
  SECTION("every key away from its default") {
    auto c = load_ok(full);
    CHECK(c.listen.size() == 3);
    CHECK(c.relay.ca_file == "null");  // a string, not a null
    CHECK(c.relay.username == "yes");  // a string, not a boolean
    CHECK(c.spool_path == "var/spool with space");
    auto back = round_trip(c);
    CHECK(back == c);
    CHECK(back.relay.oauth2 == c.relay.oauth2);
    CHECK(back.relay.fallback == c.relay.fallback);
  }
}

TEST_CASE("describe() shows every key with defaults filled in") {
  auto text = describe(load_ok("relay:\n  username: u\n  password_file: /run/secrets/relay\n"));
  for (const char* key : {"hostname:", "threads:", "listen:", "address:", "proxy_protocol:", "allowed_networks:",
                          "trusted_proxies:", "max_message_size: 25MiB", "max_errors: 10", "session_timeout: 30m",
                          "path: /var/spool/mailhop", "cert_file: null", "users_file: null", "host: smtp.example.com",
                          "port: 587", "tls: starttls", "verify: true", "password_file: /run/secrets/relay",
                          "password_env: null", "auth: auto", "oauth2: null", "fallback: []", "data_block: 3m",
                          "idle: 1m", "workers: 16", "give_up_after: 5d", "token_file: null",
                          "readiness_window: 5m", "level: info", "format: text"}) {
    CHECK_THAT(text, Contains(key));
  }
}

TEST_CASE("describe() never contains a secret") {
  // The schema holds no secret values, only where they are: the password in the environment
  // variable must not be read into the output, the variable's name must be shown.
  ::setenv("MAILHOP_TEST_RELAY_PASSWORD", "hunter2-s3cret", 1);
  auto c = load_ok("relay:\n  username: u\n  password_env: MAILHOP_TEST_RELAY_PASSWORD\n");
  auto text = describe(c);
  CHECK_THAT(text, Contains("password_env: MAILHOP_TEST_RELAY_PASSWORD"));
  CHECK_THAT(text, !Contains("hunter2-s3cret"));
  ::unsetenv("MAILHOP_TEST_RELAY_PASSWORD");
}

TEST_CASE("redaction: secret values hidden, where they come from shown") {
  CHECK(is_secret_key("relay.password"));
  CHECK(is_secret_key("relay.oauth2.client_secret"));
  CHECK(is_secret_key("relay.oauth2.refresh_token"));
  CHECK(is_secret_key("relay.oauth2.access_token"));
  CHECK(is_secret_key("admin.token"));
  CHECK(is_secret_key("password"));
  CHECK_FALSE(is_secret_key("relay.password_file"));
  CHECK_FALSE(is_secret_key("relay.password_env"));
  CHECK_FALSE(is_secret_key("relay.oauth2.token_url"));
  CHECK_FALSE(is_secret_key("relay.oauth2.token_command"));
  CHECK_FALSE(is_secret_key("relay.oauth2.client_secret_file"));
  CHECK_FALSE(is_secret_key("admin.token_file"));
  CHECK_FALSE(is_secret_key("relay.username"));
  CHECK_FALSE(is_secret_key("relay.host"));

  CHECK(redact("relay.password", "hunter2") == "<redacted>");
  CHECK(redact("relay.oauth2.client_secret", "abc") == std::string(redacted));
  CHECK(redact("relay.password_file", "/run/secrets/p") == "/run/secrets/p");
  CHECK(redact("relay.username", "alice") == "alice");
}
