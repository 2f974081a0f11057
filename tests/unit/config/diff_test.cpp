// The reload diff: which keys changed, which of them need a restart, and what the daemon runs
// with after a reload (restart-only keys keep their running value).
#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "mailhop/config/diff.hpp"

using namespace mailhop::config;
using mailhop::config::test::load_ok;

namespace {

std::vector<std::string> keys(const std::vector<Change>& changes, bool needs_restart) {
  std::vector<std::string> out;
  for (const auto& c : changes)
    if (c.needs_restart == needs_restart) out.push_back(c.key);
  return out;
}

const char* kBase = R"(
listen: [{address: "127.0.0.1:2525"}]
allowed_networks: [127.0.0.1/32]
spool: {path: /var/spool/a}
relay:
  host: a.example.com
  port: 587
  timeouts: {greeting: 5m}
log: {level: info}
)";

}  // namespace

TEST_CASE("config diff: the same configuration changes nothing", "[diff]") {
  const auto c = load_ok(kBase);
  CHECK(diff(c, c).empty());
  CHECK(reloadable(c, c) == c);
}

TEST_CASE("config diff: keys applied at once are named by their path", "[diff]") {
  const auto a = load_ok(kBase);
  const auto b = load_ok(R"(
listen: [{address: "127.0.0.1:2525"}]
allowed_networks: [127.0.0.0/8]
spool: {path: /var/spool/a}
relay:
  host: a.example.com
  port: 2526
  timeouts: {greeting: 10s}
log: {level: debug}
limits: {max_message_size: 1M}
delivery: {retry: {initial: 5s}, shutdown_grace: 3s}
)");
  const auto changes = diff(a, b);
  CHECK(keys(changes, false) == std::vector<std::string>{"allowed_networks", "limits.max_message_size", "relay.port",
                                                          "relay.timeouts.greeting", "delivery.retry.initial",
                                                          "delivery.shutdown_grace", "log.level"});
  CHECK(keys(changes, true).empty());
  CHECK(reloadable(a, b) == b);
}

TEST_CASE("config diff: listeners, spool, threads, admin.listen, workers and connection limits need a restart", "[diff]") {
  const auto a = load_ok(kBase);
  const auto b = load_ok(R"(
listen: [{address: "127.0.0.1:2626"}]
allowed_networks: [127.0.0.1/32]
spool: {path: /var/spool/b}
threads: 3
relay:
  host: a.example.com
  port: 587
  timeouts: {greeting: 5m}
log: {level: info}
limits: {max_connections: 7, max_connections_per_ip: 2}
delivery: {workers: 2, max_connections: 9}
admin: {listen: "127.0.0.1:9999", readiness_window: 1m}
)");
  const auto changes = diff(a, b);
  CHECK(keys(changes, true) == std::vector<std::string>{"threads", "listen", "limits.max_connections",
                                                         "limits.max_connections_per_ip", "spool.path",
                                                         "delivery.workers", "admin.listen"});
  CHECK(keys(changes, false) == std::vector<std::string>{"delivery.max_connections", "admin.readiness_window"});

  // What runs after the reload: the restart-only keys as they were, the rest as loaded.
  const auto running = reloadable(a, b);
  CHECK(running.listen == a.listen);
  CHECK(running.spool_path == "/var/spool/a");
  CHECK(running.threads == a.threads);
  CHECK(running.limits.max_connections == a.limits.max_connections);
  CHECK(running.delivery.workers == a.delivery.workers);
  CHECK(running.admin.listen == a.admin.listen);
  CHECK(running.admin.token_file == a.admin.token_file);
  CHECK(running.admin.readiness_window == std::chrono::minutes(1));  // /readyz's window follows a reload
  CHECK(running.delivery.max_connections == 9);
  // So a second reload of the same file reports the same restart-only keys again, and nothing else.
  CHECK(keys(diff(running, b), true) == keys(changes, true));
  CHECK(keys(diff(running, b), false).empty());
}

TEST_CASE("config diff: a secret's change is named, never shown", "[diff]") {
  auto a = load_ok(kBase);
  auto b = a;
  b.relay.password = "s3cret-new";
  b.relay.username = "user";
  const auto changes = diff(a, b);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0] == Change{"relay.username", false});
  CHECK(changes[1] == Change{"relay.password", false});
}

TEST_CASE("config diff: certificates, users and the relay's TLS are applied", "[diff]") {
  auto a = load_ok(kBase);
  auto b = a;
  b.tls.cert_file = "/etc/new.pem";
  b.tls.key_file = "/etc/new.key";
  b.auth.users_file = "/etc/users";
  b.relay.tls = RelayTls::implicit;
  b.relay.fallback.push_back(Endpoint{"b.example.com", 25});
  b.hostname = "other.example";
  CHECK(keys(diff(a, b), false) == std::vector<std::string>{"hostname", "tls.cert_file", "tls.key_file",
                                                             "auth.users_file", "relay.tls", "relay.fallback"});
  CHECK(keys(diff(a, b), true).empty());
}
