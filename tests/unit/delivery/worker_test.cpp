// One delivery attempt end to end inside the process: a real Spool in a scratch directory, the
// ConnectionPool, and the scripted next hop (fake_server.hpp). What is checked is what a restart
// would see on disk: recipient states, attempts, last_error, the bounce, the removal.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "fake_server.hpp"
#include "mailhop/delivery/worker.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using mailhop::test::FakeServer;
namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("mailhop-delivery-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::string kContent = "From: alice@example.org\r\nSubject: worker test\r\n\r\nHello.\r\n";

struct Fixture {
  asio::io_context io;
  ScratchDir dir;
  spool::Spool spool{spool::Spool::Options{dir.path, false}};
  FakeServer server{io};
  std::shared_ptr<config::Config> config = std::make_shared<config::Config>();
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<ConnectionPool> pool;
  std::unique_ptr<WorkerContext> ctx;

  Fixture() {
    spool.open();
    config->hostname = "relay.test";
    config->relay.host = "127.0.0.1";
    config->relay.port = server.port();
    config->relay.tls = config::RelayTls::none;
    auto& t = config->relay.timeouts;
    t.connect = t.greeting = t.command = t.data_init = t.data_block = t.data_end = 2s;
    config->delivery.max_connections = 1;
    config->delivery.retry = config::Retry{1min, 1h, 24h};
    scheduler = std::make_unique<Scheduler>(io.get_executor());
    pool = std::make_unique<ConnectionPool>(io.get_executor(), config, nullptr);
    ctx = std::make_unique<WorkerContext>(WorkerContext{config, spool, *scheduler, *pool});
    asio::co_spawn(io, server.run(10), asio::detached);
  }

  spool::Envelope store(std::string sender, std::vector<std::string> rcpts) {
    spool::Envelope e;
    e.sender = std::move(sender);
    for (auto& r : rcpts) e.recipients.push_back(spool::Recipient{r, spool::RecipientState::pending, ""});
    e.arrival = e.next_attempt = std::chrono::system_clock::now();
    e.client_host = "app.test";
    e.client_ip = "127.0.0.1";
    std::error_code result;
    bool done = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      result = co_await spool.store(e, kContent);
      done = true;
    }, asio::detached);
    while (!done) io.run_one();
    REQUIRE(!result);
    return e;
  }

  std::optional<spool::Envelope> attempt(spool::Envelope e) {
    std::optional<spool::Envelope> kept;
    bool done = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      kept = co_await deliver(*ctx, e);
      done = true;
    }, [](std::exception_ptr ex) { if (ex) std::rethrow_exception(ex); });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(100ms);
    REQUIRE(done);
    return kept;
  }

  ~Fixture() {
    pool->stop();
    scheduler->stop();
    server.acceptor.close();
    io.run_for(2s);
  }
};

std::size_t count(const std::vector<std::string>& lines, const std::string& line) {
  return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), line));
}

}  // namespace

TEST_CASE("worker: outcomes are recorded, a sent recipient is never sent again, failures bounce", "[worker]") {
  Fixture f;
  f.server.rcpt_replies["bob@example.net"] = "550 5.1.1 <bob@example.net>: no such user\r\n";
  f.server.rcpt_replies["carol@example.net"] = "451 4.3.0 try later\r\n";
  auto e = f.store("alice@example.org", {"ann@example.net", "bob@example.net", "carol@example.net"});

  auto kept = f.attempt(e);
  REQUIRE(kept);
  CHECK(kept->attempts == 1);
  CHECK(kept->next_attempt > std::chrono::system_clock::now() + 40s);  // 1 min −20%
  REQUIRE(kept->last_error);
  CHECK(kept->last_error->starts_with("451 4.3.0"));
  // What a restart would find: the same states on disk.
  auto on_disk = f.spool.load(e.id);
  REQUIRE(on_disk);
  REQUIRE(on_disk->recipients.size() == 3);
  CHECK(on_disk->recipients[0].state == spool::RecipientState::sent);
  CHECK(on_disk->recipients[1].state == spool::RecipientState::failed);
  CHECK(on_disk->recipients[1].last_reply == "550 5.1.1 <bob@example.net>: no such user");
  CHECK(on_disk->recipients[2].state == spool::RecipientState::pending);
  CHECK(on_disk->attempts == 1);

  // The retry: only carol is sent, then the bounce for bob goes into the queue, and the
  // message leaves it.
  f.server.rcpt_replies.erase("carol@example.net");
  auto second = f.attempt(*on_disk);
  CHECK(!second);
  CHECK(count(f.server.lines, "RCPT TO:<ann@example.net>") == 1);
  CHECK(count(f.server.lines, "RCPT TO:<carol@example.net>") == 2);
  CHECK(f.server.connections == 1);  // the connection was reused, without RSET (the transaction had ended)
  CHECK(count(f.server.lines, "RSET") == 0);
  CHECK(!f.spool.load(e.id));

  auto queued = f.spool.list();
  REQUIRE(queued.size() == 1);
  const auto& bounce = queued[0];
  CHECK(bounce.sender.empty());
  REQUIRE(bounce.recipients.size() == 1);
  CHECK(bounce.recipients[0].address == "alice@example.org");
  auto content = f.spool.read_content_sync(bounce.id);
  REQUIRE(content);
  CHECK(content->find("Final-Recipient: rfc822; bob@example.net") != std::string::npos);
  CHECK(content->find("Diagnostic-Code: smtp; 550 5.1.1") != std::string::npos);
  CHECK(content->find("Subject: worker test") != std::string::npos);
  CHECK(content->find("carol") == std::string::npos);
  CHECK(f.scheduler->queued() == 1);  // and it is scheduled to go out like any message
}

TEST_CASE("worker: past give_up_after the pending recipients fail and bounce", "[worker]") {
  Fixture f;
  f.config->delivery.retry.give_up_after = 0s;
  f.server.rcpt_replies["carol@example.net"] = "451 4.3.0 try later\r\n";
  auto e = f.store("alice@example.org", {"carol@example.net"});
  auto kept = f.attempt(e);
  CHECK(!kept);
  auto queued = f.spool.list();
  REQUIRE(queued.size() == 1);
  auto content = f.spool.read_content_sync(queued[0].id);
  REQUIRE(content);
  CHECK(content->find("Status: 5.4.7") != std::string::npos);
  std::string text = *content;  // the explanation is wrapped with an indent
  for (std::size_t at; (at = text.find("\r\n    ")) != std::string::npos;) text.replace(at, 6, " ");
  CHECK(text.find("4.4.7 Message expired after 1 attempts: 451 4.3.0 try later") != std::string::npos);
}

TEST_CASE("worker: a message from the null sender never bounces", "[worker]") {
  Fixture f;
  f.server.rcpt_replies["bob@example.net"] = "550 5.1.1 no such user\r\n";
  auto e = f.store("", {"bob@example.net"});
  CHECK(!f.attempt(e));
  CHECK(f.spool.list().empty());
  CHECK(count(f.server.lines, "MAIL FROM:<> SIZE=" + std::to_string(kContent.size())) == 1);
}

TEST_CASE("worker: a next hop that cannot be reached defers everyone with the cause", "[worker]") {
  Fixture f;
  std::uint16_t closed_port;
  {
    asio::ip::tcp::acceptor probe(f.io, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  f.config->relay.port = closed_port;
  auto e = f.store("alice@example.org", {"ann@example.net", "bob@example.net"});
  auto kept = f.attempt(e);
  REQUIRE(kept);
  CHECK(kept->attempts == 1);
  REQUIRE(kept->last_error);
  CHECK(kept->last_error->find("Connection refused") != std::string::npos);
  auto on_disk = f.spool.load(e.id);
  REQUIRE(on_disk);
  for (const auto& r : on_disk->recipients) CHECK(r.state == spool::RecipientState::pending);
  CHECK(f.spool.list().size() == 1);  // no bounce
}
