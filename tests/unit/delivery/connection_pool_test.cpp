// The connection pool: at most max_connections open, a waiting worker gets the connection
// given back, an idle connection is closed with QUIT after relay.timeouts.idle, and on stop().
#include <catch2/catch.hpp>

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_server.hpp"
#include "mailhop/delivery/connection_pool.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using mailhop::test::FakeServer;
namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<config::Config> make_config(std::uint16_t port, unsigned max_connections, config::Duration idle) {
  auto c = std::make_shared<config::Config>();
  c->hostname = "client.test";
  c->relay.host = "127.0.0.1";
  c->relay.port = port;
  c->relay.tls = config::RelayTls::none;
  auto& t = c->relay.timeouts;
  t.connect = t.greeting = t.command = t.data_init = t.data_block = t.data_end = 2s;
  t.idle = idle;
  c->delivery.max_connections = max_connections;
  return c;
}

// Runs the io_context until `condition` holds or 10 s pass.
template <typename F>
bool run_until(asio::io_context& io, F condition) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  io.restart();  // it stops whenever it runs out of work
  while (!condition() && std::chrono::steady_clock::now() < deadline) io.run_one_for(20ms);
  return condition();
}

bool has_quit(const FakeServer& s) { return std::find(s.lines.begin(), s.lines.end(), "QUIT") != s.lines.end(); }

}  // namespace

TEST_CASE("pool: max_connections bounds open connections; a waiter gets the one released", "[pool]") {
  asio::io_context io;
  FakeServer server(io);
  asio::co_spawn(io, server.run(5), asio::detached);
  ConnectionPool pool(io.get_executor(), make_config(server.port(), 1, 60s), nullptr);

  Lease first, second;
  bool first_done = false, second_done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    first = co_await pool.acquire();
    first_done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return first_done; }));
  REQUIRE(first.client);
  asio::co_spawn(io, [&]() -> awaitable<void> {
    second = co_await pool.acquire();
    second_done = true;
  }, asio::detached);
  io.run_for(200ms);
  CHECK(!second_done);  // the only slot is taken
  CHECK(pool.open() == 1);

  pool.release(std::move(first.client));
  REQUIRE(run_until(io, [&] { return second_done; }));
  REQUIRE(second.client);
  CHECK(server.connections == 1);  // the same connection, reset with RSET
  CHECK(std::find(server.lines.begin(), server.lines.end(), "RSET") != server.lines.end());

  pool.release(std::move(second.client));
  pool.stop();
  CHECK(run_until(io, [&] { return has_quit(server); }));
  server.acceptor.close();
  io.run_for(100ms);
}

TEST_CASE("pool: an idle connection is closed with QUIT after the idle timeout", "[pool]") {
  asio::io_context io;
  FakeServer server(io);
  asio::co_spawn(io, server.run(1), asio::detached);
  ConnectionPool pool(io.get_executor(), make_config(server.port(), 2, 300ms), nullptr);
  Lease lease;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return done; }));
  REQUIRE(lease.client);
  const auto released = std::chrono::steady_clock::now();
  pool.release(std::move(lease.client));
  CHECK(pool.idle() == 1);
  REQUIRE(run_until(io, [&] { return has_quit(server); }));
  CHECK(std::chrono::steady_clock::now() - released >= 250ms);
  CHECK(pool.idle() == 0);
  CHECK(run_until(io, [&] { return pool.open() == 0; }));
  server.acceptor.close();
  io.run_for(100ms);
}

TEST_CASE("pool: no connection possible gives the reason, and the slot back", "[pool]") {
  asio::io_context io;
  std::uint16_t closed_port;
  {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  ConnectionPool pool(io.get_executor(), make_config(closed_port, 1, 60s), nullptr);
  Lease lease;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(!lease.client);
  CHECK(lease.failure.failure.outcome == Outcome::deferred);
  CHECK(lease.failure.failure.text.find("Connection refused") != std::string::npos);
  CHECK(lease.relay == "127.0.0.1[127.0.0.1]:" + std::to_string(closed_port));
  CHECK(pool.open() == 0);

  // Right after, the next hop counts as down: the next attempt is deferred without waiting.
  done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(!lease.client);
  CHECK(lease.failure.failure.text.starts_with("delivery temporarily suspended: connect to 127.0.0.1:"));
}

TEST_CASE("pool: stop() aborts a connection waiting for the greeting at once", "[pool][stop]") {
  asio::io_context io;
  FakeServer server(io);
  server.silent = true;  // accepts TCP, never speaks
  asio::co_spawn(io, server.run(1), asio::detached);
  auto config = make_config(server.port(), 1, 60s);
  config->relay.timeouts.greeting = 60s;
  ConnectionPool pool(io.get_executor(), config, nullptr);
  Lease lease;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return server.connections == 1; }));
  CHECK(!done);
  const auto stopped = std::chrono::steady_clock::now();
  pool.stop();
  REQUIRE(run_until(io, [&] { return done; }));
  CHECK(std::chrono::steady_clock::now() - stopped < 2s);
  CHECK(!lease.client);
  CHECK(lease.stopping);  // not an attempt: the message stays as it was
  CHECK(pool.open() == 0);
  CHECK(pool.drained());
  server.acceptor.close();
  io.run_for(100ms);
}

TEST_CASE("pool: after stop() a leased connection has shutdown_grace, then is aborted", "[pool][stop]") {
  asio::io_context io;
  FakeServer server(io);
  asio::co_spawn(io, server.run(1), asio::detached);
  auto config = make_config(server.port(), 1, 60s);
  config->delivery.shutdown_grace = 300ms;
  ConnectionPool pool(io.get_executor(), config, nullptr);
  Lease lease;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return done; }));
  REQUIRE(lease.client);
  const auto stopped = std::chrono::steady_clock::now();
  pool.stop();
  io.restart();
  io.run_for(100ms);
  CHECK(lease.client->usable());  // within the grace period: left alone
  CHECK(!pool.drained());
  REQUIRE(run_until(io, [&] { return !lease.client->usable(); }));
  CHECK(std::chrono::steady_clock::now() - stopped >= 250ms);
  pool.release(std::move(lease.client));
  CHECK(pool.open() == 0);
  CHECK(pool.drained());
  CHECK(!has_quit(server));  // abandoned, not closed politely
  server.acceptor.close();
  io.run_for(100ms);
}

TEST_CASE("pool: a connection given back within the grace period gets QUIT", "[pool][stop]") {
  asio::io_context io;
  FakeServer server(io);
  asio::co_spawn(io, server.run(1), asio::detached);
  auto config = make_config(server.port(), 1, 60s);
  config->delivery.shutdown_grace = 30s;
  ConnectionPool pool(io.get_executor(), config, nullptr);
  Lease lease;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    lease = co_await pool.acquire();
    done = true;
  }, asio::detached);
  REQUIRE(run_until(io, [&] { return done; }));
  REQUIRE(lease.client);
  pool.stop();
  pool.release(std::move(lease.client));
  REQUIRE(run_until(io, [&] { return pool.drained(); }));
  CHECK(has_quit(server));
  // Nothing is left waiting (the grace timer neither): the io_context runs out of work at once.
  io.restart();
  const auto before = std::chrono::steady_clock::now();
  io.run_for(5s);
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  server.acceptor.close();
}

TEST_CASE("pool: reconfigure() with new relay settings closes idle connections; new ones go to the new hop",
          "[pool][reload]") {
  asio::io_context io;
  FakeServer first(io);
  FakeServer second(io);
  asio::co_spawn(io, first.run(1), asio::detached);
  asio::co_spawn(io, second.run(1), asio::detached);
  ConnectionPool pool(io.get_executor(), make_config(first.port(), 2, 60s), nullptr);
  Lease lease;
  bool done = false;
  auto acquire = [&] {
    done = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      lease = co_await pool.acquire();
      done = true;
    }, asio::detached);
    return run_until(io, [&] { return done; });
  };
  REQUIRE(acquire());
  REQUIRE(lease.client);
  pool.release(std::move(lease.client));
  CHECK(pool.idle() == 1);

  pool.reconfigure(make_config(second.port(), 2, 60s), nullptr);
  CHECK(pool.idle() == 0);
  REQUIRE(run_until(io, [&] { return has_quit(first); }));
  REQUIRE(acquire());
  REQUIRE(lease.client);
  CHECK(second.connections == 1);
  CHECK(first.connections == 1);
  pool.release(std::move(lease.client));
  pool.stop();
  CHECK(run_until(io, [&] { return has_quit(second); }));
  first.acceptor.close();
  second.acceptor.close();
  io.run_for(100ms);
}
