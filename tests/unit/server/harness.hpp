// Shared by the server tests: a real session (or Server) on a loopback port, run by one
// io_context on a background thread, with a spool in a temporary directory; and a plain
// blocking client whose every read has a deadline, so a broken server fails a test instead of
// hanging it. No sleeps: waits end on a condition or a deadline.
#pragma once

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/server/authenticator.hpp"
#include "mailhop/server/session.hpp"
#include "mailhop/server/shutdown.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::server::test {

using namespace std::chrono_literals;
namespace asio = boost::asio;

constexpr auto kPatience = std::chrono::milliseconds(10000);  // longest any single wait may take

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char name[] = "/tmp/mailhop-server-test-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path, ignored);
  }
};

inline config::Network network(const char* text) {
  auto n = config::Network::parse(text);
  REQUIRE(n);
  return *n;
}

// Generous limits so a slow machine never trips them by accident; tests lower what they test.
inline config::Config test_config() {
  config::Config c;
  c.hostname = "mx.test";
  c.allowed_networks = {network("127.0.0.0/8"), network("::1/128")};
  c.limits.max_message_size = 1024 * 1024;
  c.limits.max_recipients = 100;
  c.limits.max_errors = 10;
  c.limits.command_timeout = 30s;
  c.limits.data_timeout = 30s;
  c.limits.session_timeout = 120s;
  return c;
}

// A blocking client on a plain POSIX socket; reads wait with poll() up to a deadline.
class Client {
 public:
  explicit Client(std::uint16_t port, const char* address = "127.0.0.1") {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address(address), port});
    fd_ = socket.release();
  }
  Client(Client&& other) noexcept : fd_(std::exchange(other.fd_, -1)), buffer_(std::move(other.buffer_)) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // True when bytes (or EOF) arrive within `wait`; what arrives is kept for line().
  bool wait_readable(std::chrono::milliseconds wait) {
    if (!buffer_.empty() || eof_) return true;
    return fill(wait);
  }

  // The next line without its CRLF; nullopt on EOF or after `patience`.
  std::optional<std::string> line(std::chrono::milliseconds patience = kPatience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    for (;;) {
      auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        auto text = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return text;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (eof_ || left <= 0ms || !fill(left)) return std::nullopt;
    }
  }

  // One whole reply (RFC 5321 §4.2.1), its lines joined with "\n"; "" on EOF or timeout.
  std::string reply(std::chrono::milliseconds patience = kPatience) {
    std::string all;
    for (;;) {
      auto l = line(patience);
      if (!l) return all.empty() ? "" : all + "\n<incomplete>";
      all += (all.empty() ? "" : "\n") + *l;
      if (l->size() < 4 || (*l)[3] != '-') return all;
    }
  }

  // True when the server closes the connection (and sends nothing more) within `patience`.
  bool closed(std::chrono::milliseconds patience = kPatience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (!eof_) {
      if (!buffer_.empty()) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms || !fill(left)) return false;
    }
    return buffer_.empty();
  }

  void close() {
    ::close(fd_);
    fd_ = -1;
  }

  // For a test that puts TLS on the connection itself (nothing may be buffered here then).
  int fd() const { return fd_; }

 private:
  bool fill(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char data[65536];
    auto n = ::recv(fd_, data, sizeof data, 0);
    if (n <= 0) {
      eof_ = true;
    } else {
      buffer_.append(data, static_cast<std::size_t>(n));
    }
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// Sessions on a loopback port, one per connect(), run by an io_context on a background thread.
class SessionHarness {
 public:
  explicit SessionHarness(config::Config c = test_config(), bool durable = false)
      : config(std::make_shared<config::Config>(std::move(c))),
        spool(spool::Spool::Options{dir.path / "spool", durable}) {
    spool.open();
    acceptor.open(asio::ip::tcp::v4());
    acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor.listen();
    thread = std::thread([this] { io.run(); });
  }
  ~SessionHarness() {
    guard.reset();
    io.stop();
    thread.join();
    // Spool operations and password checks may be in flight: their threads touch `io` until
    // they have handed the result over, so they finish before `io` (declared after them, so
    // destroyed first) goes.
    if (auth) auth->join();
    spool.join();
  }

  // Starts a session for the next connection and connects to it.
  Client connect() {
    asio::co_spawn(
        io,
        [this]() -> asio::awaitable<void> {
          auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
          if (ec) co_return;
          SessionEnv env{config, &spool, [this](const spool::Envelope& e) { on_queued(e); }, &shutdown, listener, tls,
                         auth};
          co_await run_session(std::move(socket), std::move(env));
          ++sessions_ended;
        },
        asio::detached);
    return Client(acceptor.local_endpoint().port());
  }

  // A session through the greeting and EHLO.
  Client greeted(const char* helo = "client.test") {
    auto c = connect();
    REQUIRE(c.reply() == "220 mx.test ESMTP mailhop");
    c.send(std::string("EHLO ") + helo + "\r\n");
    REQUIRE(c.reply().rfind("250-mx.test", 0) == 0);
    return c;
  }

  std::vector<spool::Envelope> queued() const {
    std::lock_guard lock(mutex);
    return queued_;
  }
  // Whether each envelope was on disk when on_queued saw it.
  std::vector<bool> durable_at_announcement() const {
    std::lock_guard lock(mutex);
    return durable_;
  }

  TempDir dir;
  std::shared_ptr<config::Config> config;
  spool::Spool spool;
  ShutdownSignal shutdown;
  std::atomic<int> sessions_ended{0};
  // What the next connect()'s session gets: its listener's TLS/AUTH settings, certificate, users.
  config::Listener listener;
  std::shared_ptr<tls::ServerContextHolder> tls;
  std::shared_ptr<Authenticator> auth;

 private:
  void on_queued(const spool::Envelope& e) {
    bool on_disk = spool.load(e.id).has_value();
    std::lock_guard lock(mutex);
    queued_.push_back(e);
    durable_.push_back(on_disk);
  }

  mutable std::mutex mutex;
  std::vector<spool::Envelope> queued_;
  std::vector<bool> durable_;

 public:
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{io.get_executor()};
  std::thread thread;
};

// "250 2.0.0 Ok: queued as ID" → "ID".
inline std::string queue_id_of(const std::string& reply) {
  auto at = reply.rfind(' ');
  return at == std::string::npos ? "" : reply.substr(at + 1);
}

}  // namespace mailhop::server::test
