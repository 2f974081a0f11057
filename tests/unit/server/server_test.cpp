// The Server: binding, connection limits answered with 421 before any session, stop().
#include <system_error>

#include "harness.hpp"
#include "mailhop/server/server.hpp"

using namespace mailhop;
using namespace mailhop::server::test;

namespace {

// A Server on 127.0.0.1 (port chosen by the system), run on a background thread.
struct RunningServer {
  explicit RunningServer(config::Config c, unsigned threads = 1) {
    config::Listener listener;
    listener.address = "127.0.0.1:0";
    listener.host = "127.0.0.1";
    listener.port = 0;
    c.listen = {listener};
    config = std::make_shared<config::Config>(std::move(c));
    spool.open();
    server.emplace(io, server::ServerDeps{config, &spool, [this](const spool::Envelope&) { ++queued; }, nullptr, nullptr});
    server->start();
    port = server->local_endpoints().at(0).port();
    for (unsigned i = 0; i < threads; ++i) pool.emplace_back([this] { io.run(); });
  }
  ~RunningServer() {
    server->stop();
    io.stop();
    for (auto& t : pool) t.join();
  }
  // Waits until the server counts `n` sessions (the count changes on the server's thread).
  bool sessions_become(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (server->sessions() != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling a condition, not timing
    }
    return true;
  }

  TempDir dir;
  std::shared_ptr<config::Config> config;
  spool::Spool spool{spool::Spool::Options{dir.path / "spool", false}};
  boost::asio::io_context io;
  std::optional<server::Server> server;
  std::uint16_t port = 0;
  std::atomic<int> queued{0};
  std::vector<std::thread> pool;
};

}  // namespace

TEST_CASE("over the per-address limit: 421 4.7.0 and close", "[server][limits]") {
  auto config = test_config();
  config.allowed_networks = {network("10.0.0.0/8")};  // 127.0.0.1 is not exempt here
  config.limits.max_connections_per_ip = 1;
  RunningServer s(config);
  Client first(s.port);
  CHECK(first.reply() == "220 mx.test ESMTP mailhop");
  Client second(s.port);
  CHECK(second.reply() == "421 4.7.0 mx.test Too many connections from your address, try again later");
  CHECK(second.closed());
  CHECK(s.sessions_become(1));
  // The slot is free again once the first session ends.
  first.send("QUIT\r\n");
  CHECK(first.reply() == "221 2.0.0 Bye");
  first.close();
  CHECK(s.sessions_become(0));
  Client third(s.port);
  CHECK(third.reply() == "220 mx.test ESMTP mailhop");
}

TEST_CASE("allowed networks are exempt from the per-address limit, not from the total", "[server][limits]") {
  auto config = test_config();
  config.limits.max_connections_per_ip = 1;
  config.limits.max_connections = 2;
  RunningServer s(config);
  Client first(s.port);
  CHECK(first.reply() == "220 mx.test ESMTP mailhop");
  Client second(s.port);
  CHECK(second.reply() == "220 mx.test ESMTP mailhop");
  Client third(s.port);
  CHECK(third.reply() == "421 4.7.0 mx.test Too many connections, try again later");
  CHECK(third.closed());
}

TEST_CASE("stop(): no new connections, idle sessions get 421 4.3.2", "[server][shutdown]") {
  RunningServer s(test_config());
  Client idle(s.port);
  CHECK(idle.reply() == "220 mx.test ESMTP mailhop");
  s.server->stop();
  CHECK(idle.reply().rfind("421 4.3.2 ", 0) == 0);
  CHECK(idle.closed());
  idle.close();
  CHECK(s.sessions_become(0));
  // The listening socket is closed: a connection attempt is refused (or closed at once).
  bool refused = false;
  try {
    Client late(s.port);
    refused = late.closed();
  } catch (const std::exception&) {
    refused = true;
  }
  CHECK(refused);
}

TEST_CASE("start() names the address it cannot bind", "[server]") {
  RunningServer first(test_config());
  auto config = std::make_shared<config::Config>(test_config());
  config::Listener listener;
  listener.address = "127.0.0.1:" + std::to_string(first.port);
  listener.host = "127.0.0.1";
  listener.port = first.port;
  config->listen = {listener};
  boost::asio::io_context io;
  server::Server server(io, {config, &first.spool, nullptr, nullptr, nullptr});
  try {
    server.start();
    FAIL("start() bound a port in use");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(first.port)) != std::string::npos);
    CHECK(e.code() == std::errc::address_in_use);
  }
}

TEST_CASE("concurrent sessions on a multi-threaded io_context", "[server][threads]") {
  RunningServer s(test_config(), 3);
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::atomic<int> accepted{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&s, &accepted, i] {
      Client c(s.port);
      if (c.reply() != "220 mx.test ESMTP mailhop") return;
      c.send("EHLO c" + std::to_string(i) + ".test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
      std::string last;
      for (int r = 0; r < 4; ++r) last = c.reply();
      if (last.rfind("354 ", 0) != 0) return;
      for (int k = 0; k < 50; ++k) c.send("line " + std::to_string(k) + " of client " + std::to_string(i) + "\r\n");
      c.send(".\r\nQUIT\r\n");
      if (c.reply().rfind("250 2.0.0 Ok: queued as ", 0) == 0 && c.reply() == "221 2.0.0 Bye") ++accepted;
    });
  }
  for (auto& t : clients) t.join();
  CHECK(accepted == kClients);
  CHECK(s.queued == kClients);
  CHECK(s.spool.list().size() == static_cast<std::size_t>(kClients));
  CHECK(s.sessions_become(0));
}
