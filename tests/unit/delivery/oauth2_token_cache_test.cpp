// The OAuth2 token cache: expiry, refresh ahead of expiry, one request for many waiters (also
// across threads), failures (named, held down briefly, a still-valid token kept), invalidation.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mailhop/delivery/token_provider.hpp"

using namespace mailhop::delivery;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// A fake clock and a fetcher that counts calls and answers what the test set.
struct Fake {
  TokenProvider::Clock::time_point now = TokenProvider::Clock::time_point{} + 1000h;
  std::atomic<int> calls{0};
  std::chrono::seconds lifetime{3600};
  std::string error;  // when set, the fetch fails with it

  TokenProvider provider() {
    return TokenProvider(
        [this](asio::any_io_executor ex) -> asio::awaitable<FetchResult> {
          int n = ++calls;
          co_await asio::post(ex, asio::use_awaitable);  // a real fetch is never instant
          FetchResult r;
          if (!error.empty()) {
            r.error = error;
          } else {
            r.token = TokenResponse{"token-" + std::to_string(n), lifetime, std::nullopt};
          }
          co_return r;
        },
        [this] { return now; });
  }
};

TokenResult get(TokenProvider& p) {
  asio::io_context io;
  TokenResult out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await p.token(); }, asio::detached);
  io.run();
  return out;
}

}  // namespace

TEST_CASE("oauth2 cache: a token is fetched once and reused until refresh is due", "[oauth2]") {
  Fake f;
  auto p = f.provider();
  auto first = get(p);
  REQUIRE(first.token == "token-1");
  CHECK_FALSE(first.cached);
  CHECK(first.expires == f.now + 3600s);
  f.now += 3539s;  // 61 s left: more than min(60 s, 1800 s)
  auto second = get(p);
  CHECK(second.token == "token-1");
  CHECK(second.cached);
  CHECK(f.calls == 1);
  f.now += 2s;     // 59 s left: refreshed ahead of expiry
  CHECK(get(p).token == "token-2");
  CHECK(f.calls == 2);
  CHECK(p.requests() == 2);
  CHECK(p.healthy());
}

TEST_CASE("oauth2 cache: a short-lived token is refreshed at half its lifetime, not at once", "[oauth2]") {
  Fake f;
  f.lifetime = 10s;
  auto p = f.provider();
  CHECK(get(p).token == "token-1");
  f.now += 4s;
  CHECK(get(p).token == "token-1");
  CHECK(f.calls == 1);
  f.now += 2s;  // 4 s left, less than half of 10 s
  CHECK(get(p).token == "token-2");
  f.now += 11s;  // expired
  CHECK(get(p).token == "token-3");
}

TEST_CASE("oauth2 cache: many waiters share one request", "[oauth2]") {
  Fake f;
  auto p = f.provider();
  asio::io_context io;
  std::vector<TokenResult> results(50);
  for (auto& r : results)
    asio::co_spawn(io, [&p, &r]() -> asio::awaitable<void> { r = co_await p.token(); }, asio::detached);
  io.run();
  CHECK(f.calls == 1);
  for (const auto& r : results) CHECK(r.token == "token-1");
}

TEST_CASE("oauth2 cache: many waiters on several threads share one request", "[oauth2]") {
  Fake f;
  auto p = f.provider();
  asio::io_context io;
  std::atomic<int> got{0};
  for (int i = 0; i < 200; ++i)
    asio::co_spawn(io, [&p, &got]() -> asio::awaitable<void> {
      auto r = co_await p.token();
      if (r.token == "token-1") ++got;
    }, asio::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
  for (auto& t : threads) t.join();
  // Whatever the interleaving: the token stays valid, so nobody asks again.
  CHECK(f.calls == 1);
  CHECK(got == 200);
}

TEST_CASE("oauth2 cache: a failing endpoint is named, held down briefly, then asked again", "[oauth2]") {
  Fake f;
  f.error = "token endpoint https://login.test/token answered HTTP 400: invalid_grant";
  auto p = f.provider();
  auto r = get(p);
  CHECK_FALSE(r.token);
  CHECK(r.error == f.error);
  CHECK_FALSE(p.healthy());
  CHECK(p.last_error() == f.error);
  f.now += 2s;  // within the hold-down: the same answer without a request
  CHECK(get(p).error == f.error);
  CHECK(f.calls == 1);
  f.now += TokenProvider::kFailureHoldDown;
  f.error.clear();
  CHECK(get(p).token == "token-2");
  CHECK(p.healthy());
  CHECK(p.last_error().empty());
}

TEST_CASE("oauth2 cache: a failed early refresh keeps the still-valid token", "[oauth2]") {
  Fake f;
  auto p = f.provider();
  CHECK(get(p).token == "token-1");
  f.now += 3590s;  // refresh due, 10 s left
  f.error = "token endpoint down";
  auto r = get(p);
  CHECK(f.calls == 2);
  // The caller that waited for the failed refresh still gets the valid token.
  CHECK(r.token == "token-1");
  CHECK_FALSE(p.healthy());
  f.now += 11s;  // now expired, and the hold-down is over
  r = get(p);
  CHECK_FALSE(r.token);
  CHECK(r.error == "token endpoint down");
}

TEST_CASE("oauth2 cache: invalidate drops only the token that was refused", "[oauth2]") {
  Fake f;
  auto p = f.provider();
  CHECK(get(p).token == "token-1");
  p.invalidate("some-other-token");
  CHECK(get(p).token == "token-1");
  p.invalidate("token-1");
  auto r = get(p);
  CHECK(r.token == "token-2");
  CHECK_FALSE(r.cached);
  CHECK(f.calls == 2);
}

TEST_CASE("oauth2 cache: one shared provider per relay.oauth2 settings", "[oauth2]") {
  mailhop::config::Relay a;
  a.oauth2 = mailhop::config::OAuth2{};
  a.oauth2->token_command = "echo one";
  auto b = a;
  b.oauth2->token_command = "echo two";
  CHECK(TokenProvider::shared(a) == TokenProvider::shared(a));
  CHECK(TokenProvider::shared(a) != TokenProvider::shared(b));
}
