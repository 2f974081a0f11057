// The connection pool (see mailhop/delivery/connection_pool.hpp).
#include "mailhop/delivery/connection_pool.hpp"

#include <algorithm>
#include <chrono>
#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/util/metrics.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;

namespace {

constexpr const char* kShuttingDown = "mailhop is shutting down";

struct Idle {
  std::unique_ptr<RelayClient> client;
  std::unique_ptr<asio::steady_timer> timer;  // closes it after relay.timeouts.idle
};

// A connection the pool made and does not hold itself right now. `client` is only touched
// while `alive` has not expired (the owner may destroy it at any time between two handlers).
struct Tracked {
  enum class Phase { connecting, busy };  // busy: in a transaction, or saying QUIT
  RelayClient* client;
  std::weak_ptr<const void> alive;
  Phase phase;
};

}  // namespace

struct ConnectionPool::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor strand;
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<asio::ssl::context> tls;
  std::list<Idle> idle;
  std::list<Tracked> tracked;
  std::size_t open = 0;      // leased + idle + connecting
  asio::steady_timer freed;  // never expires: cancel_one() wakes a worker waiting for a slot
  asio::steady_timer grace;  // after stop(): when busy connections are aborted
  bool stopped = false;
  // After a failed connect with no connection open, the next hop counts as down for a short
  // while: attempts in that window are deferred at once instead of each waiting for its own
  // connect timeout (Postfix: "delivery temporarily suspended").
  std::chrono::steady_clock::time_point down_until{};
  Lease last_failure;

  Impl(asio::any_io_executor s, std::shared_ptr<const config::Config> c, std::shared_ptr<asio::ssl::context> t)
      : strand(s),
        config(std::move(c)),
        tls(std::move(t)),
        freed(s, asio::steady_timer::time_point::max()),
        grace(s, asio::steady_timer::time_point::max()) {}

  std::size_t limit() const { return std::max(1u, config->delivery.max_connections); }

  void track(RelayClient& client, Tracked::Phase phase) {
    untrack(client);
    tracked.push_back(Tracked{&client, client.lifetime(), phase});
  }
  // Forgets it; then settle() once the caller has decided what happens to it.
  void untrack(const RelayClient& client) {
    tracked.remove_if([&](const Tracked& t) { return t.alive.expired() || t.client == &client; });
  }
  // Aborts the live connections in `phase`.
  void abort(Tracked::Phase phase) {
    for (auto& t : tracked)
      if (t.phase == phase && !t.alive.expired()) t.client->abort(kShuttingDown);
  }
  bool drained() {
    tracked.remove_if([](const Tracked& t) { return t.alive.expired(); });
    return stopped && tracked.empty() && idle.empty();
  }
  // Once stopped and drained, the grace timer has nothing left to cut short: let it go, so
  // the io_context can run out of work.
  void settle() {
    if (drained()) grace.cancel();
  }

  static asio::awaitable<void> quit(std::shared_ptr<Impl> self, std::unique_ptr<RelayClient> client) {
    const std::string name = client->relay_name();
    co_await client->quit();
    spdlog::debug("relay {}: connection closed", name);
    self->untrack(*client);
    self->settle();
  }

  // QUIT and close, owning the connection until done (tracked as busy until then).
  void close_in_background(std::unique_ptr<RelayClient> client) {
    --open;
    freed.cancel_one();
    track(*client, Tracked::Phase::busy);
    asio::co_spawn(strand, quit(shared_from_this(), std::move(client)), asio::detached);
  }

  void close_idle() {
    while (!idle.empty()) {
      auto client = std::move(idle.back().client);
      idle.back().timer->cancel();
      idle.pop_back();
      close_in_background(std::move(client));
    }
  }
};

void record_connect(const ConnectResult& result, const RelayClient& client) {
  auto& metrics = util::metrics::registry();
  util::metrics::NextHopRecord record;
  record.ok = result.ok;
  record.at = std::chrono::system_clock::now();
  record.tls = client.tls_active();
  record.detail = result.ok ? client.relay_name() : result.failure.text;
  if (!result.ok) {
    // The causes, from the enhanced codes relay_client.cpp gives them (RFC 3463, RFC 4954 §6).
    const auto& dsn = result.failure.dsn;
    const auto& text = result.failure.text;
    if (dsn == "4.7.4") {
      metrics.tls_failures.inc("outbound_not_offered");
    } else if (dsn == "4.7.5") {
      metrics.tls_failures.inc("outbound_handshake");
    } else if (dsn.ends_with(".7.8") || text.find("authentication failed") != std::string::npos) {
      metrics.auth_failures.inc("outbound_rejected");
    } else if (text.find("AUTH") != std::string::npos) {
      metrics.auth_failures.inc("outbound_not_possible");
    }
  }
  metrics.record_next_hop(std::move(record));
}

ConnectionPool::ConnectionPool(asio::any_io_executor strand, std::shared_ptr<const config::Config> config,
                               std::shared_ptr<asio::ssl::context> tls)
    : impl_(std::make_shared<Impl>(strand, std::move(config), std::move(tls))) {}

ConnectionPool::~ConnectionPool() {
  for (auto& i : impl_->idle) i.timer->cancel();
  impl_->freed.cancel();
  impl_->grace.cancel();
}

asio::awaitable<Lease> ConnectionPool::acquire() {
  auto self = impl_;
  for (;;) {
    if (self->stopped)
      co_return Lease{nullptr, {false, local_result(Outcome::deferred, "4.3.2", kShuttingDown)}, "none", true};
    while (!self->idle.empty()) {
      Idle entry = std::move(self->idle.back());
      self->idle.pop_back();
      entry.timer->cancel();
      self->track(*entry.client, Tracked::Phase::connecting);
      const bool reset = co_await entry.client->reset();
      if (reset && !self->stopped) {
        self->track(*entry.client, Tracked::Phase::busy);
        co_return Lease{std::move(entry.client), {true, {}}, {}};
      }
      if (reset) {  // stopped while RSET was on its way
        self->close_in_background(std::move(entry.client));
        continue;
      }
      spdlog::debug("relay {}: idle connection no longer usable", entry.client->relay_name());
      --self->open;  // closed by reset(); its slot is free
      self->untrack(*entry.client);
      self->settle();
    }
    if (self->stopped) continue;
    if (self->open == 0 && std::chrono::steady_clock::now() < self->down_until) {
      Lease suspended;
      suspended.failure = self->last_failure.failure;
      suspended.failure.failure.text = "delivery temporarily suspended: " + self->last_failure.failure.failure.text;
      suspended.relay = self->last_failure.relay;
      co_return suspended;
    }
    if (self->open < self->limit()) {
      ++self->open;
      auto client = std::make_unique<RelayClient>(self->strand, self->config, self->tls);
      self->track(*client, Tracked::Phase::connecting);
      auto result = co_await client->connect();
      if (self->stopped) {  // aborted by stop(), or made just too late: not an attempt
        if (result.ok) {
          self->close_in_background(std::move(client));
        } else {
          --self->open;
          self->untrack(*client);
          self->settle();
        }
        continue;
      }
      record_connect(result, *client);
      if (result.ok) {
        self->track(*client, Tracked::Phase::busy);
        spdlog::debug("relay {}: connected ({} of {} connections)", client->relay_name(), self->open, self->limit());
        std::string name = client->relay_name();
        co_return Lease{std::move(client), std::move(result), std::move(name)};
      }
      --self->open;
      self->freed.cancel_one();
      self->untrack(*client);
      self->settle();
      std::string name = client->relay_name();
      if (self->open == 0) {
        const auto window = std::clamp<config::Duration>(self->config->delivery.retry.initial, std::chrono::seconds(1),
                                                         std::chrono::seconds(60));
        self->down_until = std::chrono::steady_clock::now() + window;
        self->last_failure = Lease{nullptr, result, name};
      }
      co_return Lease{nullptr, std::move(result), std::move(name)};
    }
    co_await self->freed.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void ConnectionPool::release(std::unique_ptr<RelayClient> client) {
  auto& self = *impl_;
  if (!client) return;
  self.untrack(*client);
  if (!client->usable()) {
    --self.open;
    self.freed.cancel_one();
    self.settle();
    return;
  }
  if (self.stopped) {
    self.close_in_background(std::move(client));
    self.settle();
    return;
  }
  Idle entry{std::move(client), std::make_unique<asio::steady_timer>(self.strand)};
  entry.timer->expires_after(self.config->relay.timeouts.idle);
  asio::steady_timer* timer = entry.timer.get();
  self.idle.push_back(std::move(entry));
  self.freed.cancel_one();  // a waiting worker may take it
  timer->async_wait([weak = impl_->weak_from_this(), timer](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    for (auto it = self->idle.begin(); it != self->idle.end(); ++it) {
      if (it->timer.get() != timer) continue;
      spdlog::debug("relay {}: idle for {}ms, closing", it->client->relay_name(), self->config->relay.timeouts.idle.count());
      auto client = std::move(it->client);
      self->idle.erase(it);  // destroys the timer whose handler this is: safe, it already ran
      self->close_in_background(std::move(client));
      return;
    }
  });
}

void ConnectionPool::stop() {
  auto& self = *impl_;
  if (self.stopped) return;
  self.stopped = true;
  self.abort(Tracked::Phase::connecting);  // a next hop that never greets must not hold up the stop
  self.close_idle();
  self.freed.cancel();
  if (self.drained()) return;
  // Transactions in progress may finish; after the grace period they are abandoned.
  self.grace.expires_after(self.config->delivery.shutdown_grace);
  self.grace.async_wait([weak = impl_->weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    std::size_t busy = 0;
    for (const auto& t : self->tracked) busy += t.alive.expired() ? 0 : 1;
    if (busy == 0) return;
    spdlog::warn("delivery: {} relay connection(s) still busy after delivery.shutdown_grace ({}ms): abandoned, "
                 "their messages stay queued",
                 busy, self->config->delivery.shutdown_grace.count());
    self->abort(Tracked::Phase::connecting);
    self->abort(Tracked::Phase::busy);
  });
}

void ConnectionPool::reconfigure(std::shared_ptr<const config::Config> config, std::shared_ptr<asio::ssl::context> tls) {
  auto& self = *impl_;
  const bool relay_changed = self.config->relay != config->relay;
  self.config = std::move(config);
  self.tls = std::move(tls);
  if (relay_changed) {
    // The next hop (or how to reach it) changed: what is idle may lead to the old one, and the
    // old one's failure says nothing about the new one.
    self.down_until = {};
    if (!self.idle.empty()) spdlog::info("delivery: relay settings changed: closing {} idle connection(s)", self.idle.size());
    self.close_idle();
  }
  self.freed.cancel();  // max_connections may have grown: let the waiters look again
}

asio::awaitable<ConnectResult> ConnectionPool::probe() {
  auto self = impl_;
  if (self->stopped) co_return ConnectResult{false, local_result(Outcome::deferred, "4.3.2", kShuttingDown)};
  RelayClient client(self->strand, self->config, self->tls);
  self->track(client, Tracked::Phase::connecting);
  auto result = co_await client.connect();
  record_connect(result, client);
  if (result.ok) {
    self->track(client, Tracked::Phase::busy);
    co_await client.quit();
  }
  self->untrack(client);
  self->settle();
  co_return result;
}

bool ConnectionPool::drained() const { return impl_->drained(); }

std::size_t ConnectionPool::open() const { return impl_->open; }
std::size_t ConnectionPool::idle() const { return impl_->idle.size(); }

}  // namespace mailhop::delivery
