// RelayClient against a scripted SMTP server on 127.0.0.1 (fake_server.hpp): the commands on
// the wire, per-recipient outcomes, AUTH exchanges byte for byte, dot-stuffing, fallback.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "fake_server.hpp"
#include "mailhop/delivery/relay_client.hpp"
#include "mailhop/tls/client.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using mailhop::test::FakeServer;
namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

struct Harness {
  asio::io_context io;
  FakeServer server{io};
  std::shared_ptr<config::Config> config = std::make_shared<config::Config>();
  bool finished = false;

  Harness() {
    config->hostname = "client.test";
    auto& r = config->relay;
    r.host = "127.0.0.1";
    r.port = server.port();
    r.tls = config::RelayTls::none;
    r.timeouts.connect = r.timeouts.greeting = r.timeouts.command = 2s;
    r.timeouts.data_init = r.timeouts.data_block = r.timeouts.data_end = 2s;
  }

  std::unique_ptr<RelayClient> client() {
    std::shared_ptr<asio::ssl::context> tls;
    if (config->relay.tls != config::RelayTls::none) tls = tls::make_client_context(config->relay);
    return std::make_unique<RelayClient>(io.get_executor(), config, tls);
  }

  // Runs the server for `connections` connections and `scenario` until it returns.
  template <typename Scenario>
  void run(Scenario scenario, unsigned connections = 1) {
    asio::co_spawn(io, server.run(connections), asio::detached);
    asio::co_spawn(io, std::move(scenario), [this](std::exception_ptr e) {
      finished = true;
      server.acceptor.close();
      if (e) std::rethrow_exception(e);
    });
    io.run_for(20s);
    REQUIRE(finished);
  }
};

OutgoingMessage message(std::string content, std::vector<std::string> recipients, std::string sender = "s@example.org") {
  OutgoingMessage m;
  m.sender = std::move(sender);
  m.recipients = std::move(recipients);
  m.size = content.size();
  m.content = [content](std::uint64_t offset, std::size_t max) -> awaitable<std::pair<std::error_code, std::string>> {
    // Small chunks, so stuffing across chunk boundaries is exercised.
    std::size_t from = std::min<std::size_t>(offset, content.size());
    co_return std::pair{std::error_code{}, content.substr(from, std::min<std::size_t>(max, 7))};
  };
  return m;
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string password_file(const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / ("mailhop-test-pw-" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

}  // namespace

TEST_CASE("relay client: one transaction without pipelining, outcomes per recipient", "[relay]") {
  Harness h;
  h.server.extensions = {"SIZE 1000000", "8BITMIME"};
  h.server.rcpt_replies["bad@example.net"] = "550 5.1.1 <bad@example.net>: Recipient address rejected\r\n";
  h.server.rcpt_replies["later@example.net"] = "451 4.3.0 Try again later\r\n";
  std::vector<RecipientResult> results;
  ConnectResult connected;
  const std::string content = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast line without end";
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    connected = co_await c->connect();
    if (!connected.ok) co_return;
    auto msg1 = message(content, {"a@example.net", "bad@example.net", "later@example.net"});
    results = co_await c->send(msg1);
    co_await c->quit();
  });
  REQUIRE(connected.ok);
  REQUIRE(results.size() == 3);
  CHECK(results[0].outcome == Outcome::sent);
  CHECK(results[0].dsn == "2.0.0");
  CHECK(results[0].text == "250 2.0.0 Ok: queued");
  CHECK(results[1].outcome == Outcome::failed);
  CHECK(results[1].dsn == "5.1.1");
  CHECK(results[1].remote);
  CHECK(results[2].outcome == Outcome::deferred);
  CHECK(results[2].dsn == "4.3.0");

  const std::vector<std::string> expected = {
      "EHLO client.test",
      "MAIL FROM:<s@example.org> SIZE=" + std::to_string(content.size()),
      "RCPT TO:<a@example.net>",
      "RCPT TO:<bad@example.net>",
      "RCPT TO:<later@example.net>",
      "DATA",
      "QUIT",
  };
  CHECK(h.server.lines == expected);
  REQUIRE(h.server.data.size() == 1);
  CHECK(h.server.data[0] ==
        "Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nlast line without end\r\n.\r\n");
}

TEST_CASE("relay client: MAIL, RCPTs and DATA pipelined when offered", "[relay]") {
  Harness h;
  // The server answers nothing after MAIL until it has read DATA: only a client that
  // pipelines (RFC 2920) gets any reply before its command timeout.
  h.server.hold_replies_until_data = true;
  h.server.rcpt_replies["bad@example.net"] = "550 5.1.1 No such user\r\n";
  std::vector<RecipientResult> results;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    auto r = co_await c->connect();
    if (!r.ok) co_return;
    auto msg2 = message("Subject: x\r\n\r\nbody\r\n", {"a@example.net", "bad@example.net"});
    results = co_await c->send(msg2);
    co_await c->quit();
  });
  REQUIRE(results.size() == 2);
  CHECK(results[0].outcome == Outcome::sent);
  CHECK(results[1].outcome == Outcome::failed);
  CHECK(results[1].text == "550 5.1.1 No such user");
  REQUIRE(h.server.data.size() == 1);
  CHECK(h.server.data[0] == "Subject: x\r\n\r\nbody\r\n.\r\n");
}

TEST_CASE("relay client: pipelined with every recipient refused sends no content", "[relay]") {
  Harness h;
  h.server.rcpt_replies["a@example.net"] = "550 5.1.1 No\r\n";
  h.server.data_reply = "554 5.5.1 No valid recipients\r\n";
  std::vector<RecipientResult> results;
  bool reusable = false;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto msg3 = message("x\r\n", {"a@example.net"});
    results = co_await c->send(msg3);
    reusable = c->usable();
  });
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == Outcome::failed);
  CHECK(results[0].dsn == "5.1.1");
  CHECK(h.server.data.empty());
  CHECK(reusable);
}

TEST_CASE("relay client: the final reply applies to every accepted recipient", "[relay]") {
  for (auto [final_reply, outcome, dsn] : {std::tuple{"452 4.3.1 Insufficient storage\r\n", Outcome::deferred, "4.3.1"},
                                           std::tuple{"554 5.6.0 Content refused\r\n", Outcome::failed, "5.6.0"}}) {
    Harness h;
    h.server.final_reply = final_reply;
    std::vector<RecipientResult> results;
    h.run([&]() -> awaitable<void> {
      auto c = h.client();
      if (!(co_await c->connect()).ok) co_return;
      auto msg4 = message("x\r\n", {"a@example.net", "b@example.net"});
      results = co_await c->send(msg4);
    });
    REQUIRE(results.size() == 2);
    for (const auto& r : results) {
      CHECK(r.outcome == outcome);
      CHECK(r.dsn == dsn);
    }
  }
}

TEST_CASE("relay client: 5xx to EHLO falls back to HELO without extensions", "[relay]") {
  Harness h;
  h.server.ehlo_code = 502;
  std::vector<RecipientResult> results;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto m = message("x\r\n", {"a@example.net"});
    m.eight_bit = true;
    results = co_await c->send(m);
  });
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == Outcome::sent);
  REQUIRE(h.server.lines.size() >= 3);
  CHECK(h.server.lines[0] == "EHLO client.test");
  CHECK(h.server.lines[1] == "HELO client.test");
  CHECK(h.server.lines[2] == "MAIL FROM:<s@example.org>");  // no SIZE=, no BODY= without EHLO
}

TEST_CASE("relay client: BODY=8BITMIME and SMTPUTF8 as the message needs them", "[relay]") {
  Harness h;
  h.server.extensions = {"8BITMIME", "PIPELINING"};  // no SMTPUTF8
  std::vector<RecipientResult> results;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto m = message("Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n", {"plain@example.net", "j\xc3\xb6rg@example.net"});
    m.eight_bit = true;
    m.smtputf8 = true;
    results = co_await c->send(m);
  });
  REQUIRE(results.size() == 2);
  CHECK(results[0].outcome == Outcome::sent);
  CHECK(results[1].outcome == Outcome::failed);
  CHECK(results[1].dsn == "5.6.7");
  CHECK(results[1].text.find("SMTPUTF8") != std::string::npos);
  CHECK(has_line(h.server.lines, "MAIL FROM:<s@example.org> BODY=8BITMIME"));
  CHECK(!has_line(h.server.lines, "RCPT TO:<j\xc3\xb6rg@example.net>"));
}

TEST_CASE("relay client: AUTH PLAIN exchange", "[relay][auth]") {
  Harness h;
  h.server.extensions = {"AUTH LOGIN PLAIN"};
  h.server.auth_replies = {"235 2.7.0 Authentication successful\r\n"};
  h.config->relay.username = "user";
  h.config->relay.password_file = password_file("secret\n");
  ConnectResult r;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    r = co_await c->connect();
    co_await c->quit();
  });
  CHECK(r.ok);
  const std::vector<std::string> expected = {"EHLO client.test", "AUTH PLAIN AHVzZXIAc2VjcmV0", "QUIT"};
  CHECK(h.server.lines == expected);
}

TEST_CASE("relay client: AUTH LOGIN exchange when PLAIN is not offered", "[relay][auth]") {
  Harness h;
  h.server.extensions = {"AUTH LOGIN"};
  h.server.auth_replies = {"334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n", "235 2.7.0 Ok\r\n"};
  h.config->relay.username = "user";
  ::setenv("MAILHOP_TEST_PASSWORD", "secret", 1);
  h.config->relay.password_env = "MAILHOP_TEST_PASSWORD";
  ConnectResult r;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    r = co_await c->connect();
    co_await c->quit();
  });
  CHECK(r.ok);
  const std::vector<std::string> expected = {"EHLO client.test", "AUTH LOGIN", "dXNlcg==", "c2VjcmV0", "QUIT"};
  CHECK(h.server.lines == expected);
}

TEST_CASE("relay client: a refused login defers, names the cause, never shows the password", "[relay][auth]") {
  Harness h;
  h.server.extensions = {"AUTH PLAIN"};
  h.server.auth_replies = {"535 5.7.8 Authentication credentials invalid\r\n"};
  h.config->relay.username = "user";
  h.config->relay.password_file = password_file("hunter2\n");
  ConnectResult r;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    r = co_await c->connect();
  });
  REQUIRE(!r.ok);
  CHECK(r.failure.outcome == Outcome::deferred);
  CHECK(r.failure.dsn == "4.7.8");
  CHECK(r.failure.text.find("authentication failed") != std::string::npos);
  CHECK(r.failure.text.find("535 5.7.8") != std::string::npos);
  CHECK(r.failure.text.find("hunter2") == std::string::npos);
  CHECK(!has_line(h.server.lines, "MAIL FROM:<s@example.org>"));
}

TEST_CASE("relay client: no credentials over plaintext unless tls is none", "[relay][auth]") {
  Harness h;
  h.server.extensions = {"AUTH PLAIN"};  // and no STARTTLS
  h.config->relay.tls = config::RelayTls::opportunistic;
  h.config->relay.username = "user";
  h.config->relay.password_file = password_file("secret\n");
  ConnectResult r;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    r = co_await c->connect();
  });
  REQUIRE(!r.ok);
  CHECK(r.failure.outcome == Outcome::deferred);
  CHECK(r.failure.text.find("not encrypted") != std::string::npos);
  for (const auto& line : h.server.lines) CHECK(!line.starts_with("AUTH"));
}

TEST_CASE("relay client: STARTTLS required but not offered sends nothing", "[relay][tls]") {
  Harness h;
  h.config->relay.tls = config::RelayTls::starttls;
  ConnectResult r;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    r = co_await c->connect();
  });
  REQUIRE(!r.ok);
  CHECK(r.failure.outcome == Outcome::deferred);
  CHECK(r.failure.text == "TLS required but not offered by 127.0.0.1:" + std::to_string(h.server.port()));
  const std::vector<std::string> expected = {"EHLO client.test", "QUIT"};
  CHECK(h.server.lines == expected);
}

TEST_CASE("relay client: a finished transaction needs no RSET before the next one", "[relay]") {
  Harness h;
  std::vector<RecipientResult> first, second;
  bool reset_ok = false;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto msg5 = message("one\r\n", {"a@example.net"});
    first = co_await c->send(msg5);
    reset_ok = co_await c->reset();
    auto msg6 = message("two\r\n", {"b@example.net"});
    second = co_await c->send(msg6);
    co_await c->quit();
  });
  CHECK(reset_ok);
  REQUIRE(first.size() == 1);
  REQUIRE(second.size() == 1);
  CHECK(first[0].outcome == Outcome::sent);
  CHECK(second[0].outcome == Outcome::sent);
  CHECK(h.server.connections == 1);
  // RFC 5321 §4.1.1.4: the reply to the data ends the transaction; RSET would be a wasted round trip.
  CHECK(!has_line(h.server.lines, "RSET"));
  REQUIRE(h.server.data.size() == 2);
  CHECK(h.server.data[1] == "two\r\n.\r\n");
}

TEST_CASE("relay client: RSET after a transaction that stopped before its data", "[relay]") {
  Harness h;
  h.server.extensions = {"SIZE 1000000"};  // no PIPELINING: the client stops after the refused RCPT
  h.server.rcpt_replies["nobody@example.net"] = "550 5.1.1 no such user\r\n";
  std::vector<RecipientResult> first, second;
  bool reset_ok = false;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto refused = message("one\r\n", {"nobody@example.net"});
    first = co_await c->send(refused);
    reset_ok = co_await c->reset();
    auto msg = message("two\r\n", {"b@example.net"});
    second = co_await c->send(msg);
    co_await c->quit();
  });
  CHECK(reset_ok);
  REQUIRE(first.size() == 1);
  CHECK(first[0].outcome == Outcome::failed);
  REQUIRE(second.size() == 1);
  CHECK(second[0].outcome == Outcome::sent);
  CHECK(h.server.connections == 1);
  // The server still holds the MAIL of the stopped transaction: it is reset first.
  auto rset = std::find(h.server.lines.begin(), h.server.lines.end(), "RSET");
  REQUIRE(rset != h.server.lines.end());
  CHECK(std::find(rset, h.server.lines.end(), "MAIL FROM:<s@example.org> SIZE=5") != h.server.lines.end());
}

TEST_CASE("relay client: a connection the server closed while idle is not reused", "[relay]") {
  Harness h;
  h.server.close_after_final_reply = true;
  std::vector<RecipientResult> first;
  std::optional<bool> reset_ok;
  h.run([&]() -> awaitable<void> {
    auto c = h.client();
    if (!(co_await c->connect()).ok) co_return;
    auto msg = message("one\r\n", {"a@example.net"});
    first = co_await c->send(msg);
    // Until the server has closed its end (a condition with a deadline, not a fixed delay).
    asio::steady_timer step(h.io);
    for (int i = 0; i < 2000 && h.server.closed == 0; ++i) {
      step.expires_after(1ms);
      co_await step.async_wait(asio::use_awaitable);
    }
    reset_ok = co_await c->reset();
  });
  REQUIRE(first.size() == 1);
  CHECK(first[0].outcome == Outcome::sent);
  REQUIRE(h.server.closed == 1);
  REQUIRE(reset_ok);
  CHECK(!*reset_ok);  // the closed connection is noticed: the pool opens a new one
}

TEST_CASE("relay client: fallback when the primary is down or answers 4xx", "[relay][fallback]") {
  SECTION("primary refuses connections") {
    Harness h;
    std::uint16_t closed_port;
    {
      asio::ip::tcp::acceptor probe(h.io, {asio::ip::make_address("127.0.0.1"), 0});
      closed_port = probe.local_endpoint().port();
    }  // closed again: connecting there is refused
    h.config->relay.port = closed_port;
    h.config->relay.fallback = {config::Endpoint{"127.0.0.1", h.server.port()}};
    ConnectResult r;
    std::string name;
    h.run([&]() -> awaitable<void> {
      auto c = h.client();
      r = co_await c->connect();
      name = c->relay_name();
      co_await c->quit();
    });
    CHECK(r.ok);
    CHECK(name == "127.0.0.1[127.0.0.1]:" + std::to_string(h.server.port()));
  }
  SECTION("primary answers 421 at the greeting") {
    Harness h;
    FakeServer busy(h.io);
    busy.greeting = "421 4.3.2 Service not available\r\n";
    asio::co_spawn(h.io, busy.run(1), asio::detached);
    h.config->relay.port = busy.port();
    h.config->relay.fallback = {config::Endpoint{"127.0.0.1", h.server.port()}};
    ConnectResult r;
    h.run([&]() -> awaitable<void> {
      auto c = h.client();
      r = co_await c->connect();
      co_await c->quit();
    });
    CHECK(r.ok);
    CHECK(busy.connections == 1);
    CHECK(h.server.connections == 1);
  }
}

TEST_CASE("relay client: network failures defer with the cause", "[relay]") {
  SECTION("connection lost after the content") {
    Harness h;
    h.server.drop_after_data = true;
    std::vector<RecipientResult> results;
    h.run([&]() -> awaitable<void> {
      auto c = h.client();
      if (!(co_await c->connect()).ok) co_return;
      auto msg7 = message("x\r\n", {"a@example.net"});
      results = co_await c->send(msg7);
    });
    REQUIRE(results.size() == 1);
    CHECK(results[0].outcome == Outcome::deferred);
    CHECK(results[0].text.find("lost connection") != std::string::npos);
  }
  SECTION("no greeting within the timeout") {
    Harness h;
    h.server.silent = true;
    h.config->relay.timeouts.greeting = 200ms;
    ConnectResult r;
    h.run([&]() -> awaitable<void> {
      auto c = h.client();
      r = co_await c->connect();
    });
    REQUIRE(!r.ok);
    CHECK(r.failure.outcome == Outcome::deferred);
    CHECK(r.failure.text.find("timed out") != std::string::npos);
  }
}
