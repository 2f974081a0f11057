// The OAuth2 token cache shared by all relay connections (see mailhop/delivery/token_provider.hpp).
//
// One mutex guards the cache. The first caller that finds no usable token starts the request
// (a coroutine of its own, so a caller that goes away does not strand the others); every caller,
// the first included, then waits on its own concurrent_channel, which the request fills when it
// ends: a wake-up can never be lost, whatever thread each caller runs on.
//
// SECURITY: the token is only handed to callers; nothing here logs it or puts it in an error.
#include "mailhop/delivery/token_provider.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/util/units.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;
using asio::awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using Wakeup = asio::experimental::concurrent_channel<void(boost::system::error_code)>;
}  // namespace

struct TokenProvider::State : std::enable_shared_from_this<TokenProvider::State> {
  TokenFetcher fetcher;
  Now now;

  mutable std::mutex mu;
  std::optional<std::string> token;
  Clock::time_point expires{};
  Clock::time_point refresh_at{};
  bool in_flight = false;
  std::vector<std::shared_ptr<Wakeup>> waiters;
  bool healthy = true;
  std::string last_error;
  Clock::time_point failed_until{};
  unsigned requests = 0;

  State(TokenFetcher f, Now n) : fetcher(std::move(f)), now(std::move(n)) {}

  // Runs one request and wakes everyone waiting for it.
  static awaitable<void> run(std::shared_ptr<State> self, asio::any_io_executor ex) {
    FetchResult result;
    try {
      result = co_await self->fetcher(ex);
    } catch (const std::exception& e) {  // a bug in a fetcher must not strand the waiters
      result.error = std::string("token request failed: ") + e.what();
    }
    std::vector<std::shared_ptr<Wakeup>> wake;
    {
      std::lock_guard lock(self->mu);
      self->in_flight = false;
      const auto t = self->now();
      if (result.token && !result.token->access_token.empty()) {
        auto lifetime = result.token->expires_in.value_or(kDefaultLifetime);
        if (lifetime < std::chrono::seconds(1)) lifetime = std::chrono::seconds(1);
        self->token = std::move(result.token->access_token);
        self->expires = t + lifetime;
        // RFC 6749 gives no rule; refresh when min(60 s, half the lifetime) remains.
        self->refresh_at = self->expires - std::min<Clock::duration>(std::chrono::seconds(60), lifetime / 2);
        self->healthy = true;
        self->last_error.clear();
        spdlog::info("oauth2: got an access token valid for {}", util::format_duration(lifetime));
      } else {
        self->healthy = false;
        self->last_error = result.token ? "the token endpoint returned an empty access_token" : result.error;
        self->failed_until = t + kFailureHoldDown;
        spdlog::warn("oauth2: cannot get an access token: {}", self->last_error);
      }
      wake.swap(self->waiters);
    }
    for (auto& w : wake) w->try_send(boost::system::error_code{});
  }
};

TokenProvider::TokenProvider(const config::Relay& relay) : TokenProvider(make_fetcher(relay)) {}

TokenProvider::TokenProvider(TokenFetcher fetcher, Now now)
    : state_(std::make_shared<State>(std::move(fetcher), std::move(now))) {}

TokenProvider::~TokenProvider() = default;

awaitable<TokenResult> TokenProvider::token() {
  auto ex = co_await asio::this_coro::executor;
  auto& s = *state_;
  std::shared_ptr<Wakeup> wakeup;
  bool lead = false;
  {
    std::lock_guard lock(s.mu);
    const auto t = s.now();
    const bool valid = s.token && t < s.expires;
    if (valid && t < s.refresh_at) co_return TokenResult{s.token, true, s.expires, {}};
    // Due for refresh but still valid: while a refresh runs, or after it failed, keep using it.
    if (valid && (s.in_flight || t < s.failed_until)) co_return TokenResult{s.token, true, s.expires, {}};
    if (!s.in_flight && t < s.failed_until) co_return TokenResult{std::nullopt, false, {}, s.last_error};
    if (!s.in_flight) {
      s.in_flight = true;
      ++s.requests;
      lead = true;
    }
    wakeup = std::make_shared<Wakeup>(ex, 1);
    s.waiters.push_back(wakeup);
  }
  if (lead) asio::co_spawn(ex, State::run(state_, ex), asio::detached);

  // The fetchers have their own deadlines; this one only guards against a fetcher that has none.
  asio::steady_timer timer(ex);
  timer.expires_after(kRequestTimeout * 2);
  auto r = co_await (wakeup->async_receive(use_tuple) || timer.async_wait(use_tuple));
  std::lock_guard lock(s.mu);
  if (r.index() == 1) co_return TokenResult{std::nullopt, false, {}, "the token request did not finish in time"};
  if (s.token && s.now() < s.expires) co_return TokenResult{s.token, false, s.expires, {}};
  co_return TokenResult{std::nullopt, false, {}, s.last_error.empty() ? "no access token" : s.last_error};
}

void TokenProvider::invalidate(const std::string& token) {
  std::lock_guard lock(state_->mu);
  if (state_->token && *state_->token == token) {
    state_->token.reset();
    state_->failed_until = {};  // the retry must ask the endpoint at once
  }
}

bool TokenProvider::healthy() const {
  std::lock_guard lock(state_->mu);
  return state_->healthy;
}

std::string TokenProvider::last_error() const {
  std::lock_guard lock(state_->mu);
  return state_->last_error;
}

unsigned TokenProvider::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->requests;
}

std::shared_ptr<TokenProvider> TokenProvider::shared(const config::Relay& relay) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<TokenProvider>> providers;
  const auto& o = relay.oauth2 ? *relay.oauth2 : config::OAuth2{};
  // Everything the fetcher depends on; \x1f cannot occur in any of these settings.
  std::string key;
  for (const auto* v : {&o.token_url, &o.client_id, &o.client_secret_file, &o.scope, &o.refresh_token_file,
                        &o.ca_file, &o.token_command, &relay.ca_file})
    key += v->value_or("") + '\x1f';
  key += std::string(config::to_string(o.grant));
  std::lock_guard lock(mu);
  auto& p = providers[key];
  if (!p) p = std::make_shared<TokenProvider>(relay);
  return p;
}

TokenFetcher make_fetcher(const config::Relay& relay) {
  if (relay.oauth2 && relay.oauth2->token_command) {
    return [command = *relay.oauth2->token_command](asio::any_io_executor ex) { return fetch_from_command(ex, command); };
  }
  return [relay](asio::any_io_executor ex) { return fetch_from_endpoint(ex, relay); };
}

}  // namespace mailhop::delivery
