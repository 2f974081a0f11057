// The Server: binding or adopting passed sockets, connection limits answered with 421 before
// any session, stop().
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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
    spool.join();  // operations in flight hand their results to `io` before it is destroyed
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

namespace {

// A listening socket on 127.0.0.1 (port chosen by the system), as systemd passes one.
int passed_listener(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  socklen_t length = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) == 0);
  port = ntohs(a.sin_port);
  return fd;
}

config::Listener listener_on(std::uint16_t port) {
  config::Listener listener;
  listener.address = "127.0.0.1:" + std::to_string(port);
  listener.host = "127.0.0.1";
  listener.port = port;
  return listener;
}

}  // namespace

TEST_CASE("start() adopts a passed socket for the listen entry with its address (socket activation)", "[server]") {
  TempDir dir;
  spool::Spool spool{spool::Spool::Options{dir.path / "spool", false}};
  spool.open();
  std::uint16_t port = 0;
  int fd = passed_listener(port);  // the server owns it from start() on
  auto config = std::make_shared<config::Config>(test_config());
  config->listen = {listener_on(port)};
  boost::asio::io_context io;
  server::Server server(io, {config, &spool, nullptr, nullptr, nullptr});
  server.start({util::InheritedSocket{fd, "smtp"}});
  REQUIRE(server.local_endpoints().size() == 1);
  CHECK(server.local_endpoints()[0].port() == port);
  std::thread runner([&io] { io.run(); });
  {
    Client client(port);
    CHECK(client.reply() == "220 mx.test ESMTP mailhop");
  }
  server.stop();
  io.stop();
  runner.join();
}

TEST_CASE("start() refuses a passed socket that no listen entry names, binding nothing", "[server]") {
  TempDir dir;
  spool::Spool spool{spool::Spool::Options{dir.path / "spool", false}};
  spool.open();
  std::uint16_t passed_port = 0;
  std::uint16_t configured_port = 0;
  int passed = passed_listener(passed_port);
  int configured = passed_listener(configured_port);
  ::close(configured);  // a port that was free a moment ago: the entry start() must not bind
  auto config = std::make_shared<config::Config>(test_config());
  config->listen = {listener_on(configured_port)};
  boost::asio::io_context io;
  server::Server server(io, {config, &spool, nullptr, nullptr, nullptr});
  CHECK_THROWS_WITH(server.start({util::InheritedSocket{passed, ""}}),
                    Catch::Contains("the socket passed by the service manager on 127.0.0.1:" +
                                    std::to_string(passed_port) + " (fd " + std::to_string(passed) +
                                    ") matches no listen entry"));
  CHECK(server.local_endpoints().empty());
  ::close(passed);
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
