// RelayClient with relay.auth xoauth2 / oauthbearer against the scripted FakeServer: the AUTH
// lines byte for byte, the 334 error challenge answered before the 535, a refused cached token
// dropped and retried once at once with a fresh one, a token that cannot be had deferring.
// Tokens come from relay.oauth2.token_command (a counter file: each run prints the next token).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "fake_server.hpp"
#include "mailhop/delivery/relay_client.hpp"
#include "mailhop/delivery/token_provider.hpp"
#include "mailhop/util/base64.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using namespace std::chrono_literals;
using namespace std::string_literals;
using boost::asio::awaitable;
using mailhop::test::FakeServer;

namespace {

struct Harness {
  boost::asio::io_context io;
  FakeServer server{io};
  std::shared_ptr<config::Config> config = std::make_shared<config::Config>();
  std::string counter;

  explicit Harness(config::RelayAuth auth) {
    config->hostname = "client.test";
    auto& r = config->relay;
    r.host = "127.0.0.1";
    r.port = server.port();
    r.tls = config::RelayTls::none;
    r.timeouts.connect = r.timeouts.greeting = r.timeouts.command = 5s;
    r.username = "me@example.com";
    r.auth = auth;
    // A counter file per harness, so each test gets its own shared token provider.
    counter = (std::filesystem::temp_directory_path() / ("mailhop-oauth2-counter-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(server.port())))
                  .string();
    std::filesystem::remove(counter);
    r.oauth2 = config::OAuth2{};
    r.oauth2->token_command = "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + counter +
                              "; echo tok-$n";
  }
  ~Harness() { std::filesystem::remove(counter); }

  // `connections` clients connect one after the other (and QUIT); their results.
  std::vector<ConnectResult> connect(unsigned connections) {
    std::vector<ConnectResult> results;
    boost::asio::co_spawn(io, server.run(connections), boost::asio::detached);
    boost::asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          for (unsigned i = 0; i < connections; ++i) {
            RelayClient c(io.get_executor(), config, nullptr);
            auto r = co_await c.connect();
            results.push_back(r);
            if (r.ok) co_await c.quit();
          }
          server.acceptor.close();
        },
        boost::asio::detached);
    io.run();
    return results;
  }
};

std::string xoauth2_line(const std::string& token) {
  return "AUTH XOAUTH2 " + util::base64_encode("user=me@example.com\x01"s "auth=Bearer " + token + "\x01\x01"s);
}

}  // namespace

TEST_CASE("oauth2 relay: AUTH XOAUTH2 with the token, byte for byte", "[oauth2]") {
  Harness h(config::RelayAuth::xoauth2);
  h.server.extensions = {"AUTH LOGIN XOAUTH2"};
  h.server.auth_replies = {"235 2.7.0 Accepted\r\n"};
  auto r = h.connect(1);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ok);
  const std::vector<std::string> expected = {"EHLO client.test", xoauth2_line("tok-1"), "QUIT"};
  CHECK(h.server.lines == expected);
}

TEST_CASE("oauth2 relay: AUTH OAUTHBEARER with authzid, host and port", "[oauth2]") {
  Harness h(config::RelayAuth::oauthbearer);
  h.server.extensions = {"AUTH OAUTHBEARER XOAUTH2"};
  h.server.auth_replies = {"235 2.7.0 Accepted\r\n"};
  auto r = h.connect(1);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ok);
  REQUIRE(h.server.lines.size() == 3);
  CHECK(h.server.lines[1] == "AUTH OAUTHBEARER " + util::base64_encode("n,a=me@example.com,\x01"s "host=127.0.0.1\x01"s
                                                                        "port=" + std::to_string(h.server.port()) +
                                                                        "\x01"s "auth=Bearer tok-1\x01\x01"s));
}

TEST_CASE("oauth2 relay: a refused cached token is dropped and a fresh one tried at once", "[oauth2]") {
  Harness h(config::RelayAuth::xoauth2);
  h.server.extensions = {"AUTH XOAUTH2"};
  // tok-1 in the shared cache, as after an earlier connection.
  boost::asio::co_spawn(h.io, [&]() -> awaitable<void> { co_await TokenProvider::shared(h.config->relay)->token(); },
                        boost::asio::detached);
  h.io.run();
  h.io.restart();
  // The cached token is refused with the 334 error challenge, the client answers with an empty
  // line, 535; then the fresh token is accepted on the same connection.
  h.server.auth_replies = {"334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n",
                           "535 5.7.8 Username and Password not accepted\r\n", "235 2.7.0 Accepted\r\n"};
  auto r = h.connect(1);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ok);
  const std::vector<std::string> expected = {"EHLO client.test", xoauth2_line("tok-1"), "", xoauth2_line("tok-2"),
                                             "QUIT"};
  CHECK(h.server.lines == expected);
  CHECK(TokenProvider::shared(h.config->relay)->requests() == 2);
}

TEST_CASE("oauth2 relay: a fresh token refused defers naming the reply, without the token", "[oauth2]") {
  Harness h(config::RelayAuth::xoauth2);
  h.server.extensions = {"AUTH XOAUTH2"};
  h.server.auth_replies = {"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n", "535 5.7.3 Authentication unsuccessful\r\n"};
  auto r = h.connect(1);
  REQUIRE(r.size() == 1);
  REQUIRE_FALSE(r[0].ok);
  CHECK(r[0].failure.outcome == Outcome::deferred);
  CHECK(r[0].failure.dsn == "4.7.3");
  CHECK(r[0].failure.text.find("535 5.7.3 Authentication unsuccessful") != std::string::npos);
  CHECK(r[0].failure.text.find("{\"status\":\"401\"}") != std::string::npos);
  CHECK(r[0].failure.text.find("tok-1") == std::string::npos);
  // No second try: the token was not from the cache.
  CHECK(std::count_if(h.server.lines.begin(), h.server.lines.end(),
                      [](const std::string& l) { return l.starts_with("AUTH"); }) == 1);
}

TEST_CASE("oauth2 relay: no token, no AUTH: deferred with the cause", "[oauth2]") {
  Harness h(config::RelayAuth::xoauth2);
  h.config->relay.oauth2->token_command = "echo broken-" + std::to_string(h.server.port()) + " >&2; exit 2";
  h.server.extensions = {"AUTH XOAUTH2"};
  auto r = h.connect(1);
  REQUIRE(r.size() == 1);
  REQUIRE_FALSE(r[0].ok);
  CHECK(r[0].failure.outcome == Outcome::deferred);
  CHECK(r[0].failure.text ==
        "AUTH XOAUTH2 as me@example.com not attempted: no OAuth2 access token: token_command exited with status 2");
  for (const auto& line : h.server.lines) CHECK_FALSE(line.starts_with("AUTH"));
}
