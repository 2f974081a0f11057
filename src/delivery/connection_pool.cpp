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

struct Idle {
  std::unique_ptr<RelayClient> client;
  std::unique_ptr<asio::steady_timer> timer;  // closes it after relay.timeouts.idle
};

// QUIT and close, owning the connection until done.
asio::awaitable<void> quit(std::unique_ptr<RelayClient> client) {
  const std::string name = client->relay_name();
  co_await client->quit();
  spdlog::debug("relay {}: connection closed", name);
}

}  // namespace

struct ConnectionPool::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor strand;
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<asio::ssl::context> tls;
  std::list<Idle> idle;
  std::size_t open = 0;      // leased + idle + connecting
  asio::steady_timer freed;  // never expires: cancel_one() wakes a worker waiting for a slot
  bool stopped = false;
  // After a failed connect with no connection open, the next hop counts as down for a short
  // while: attempts in that window are deferred at once instead of each waiting for its own
  // connect timeout (Postfix: "delivery temporarily suspended").
  std::chrono::steady_clock::time_point down_until{};
  Lease last_failure;

  Impl(asio::any_io_executor s, std::shared_ptr<const config::Config> c, std::shared_ptr<asio::ssl::context> t)
      : strand(s), config(std::move(c)), tls(std::move(t)), freed(s, asio::steady_timer::time_point::max()) {}

  std::size_t limit() const { return std::max(1u, config->delivery.max_connections); }

  void close_in_background(std::unique_ptr<RelayClient> client) {
    --open;
    freed.cancel_one();
    asio::co_spawn(strand, quit(std::move(client)), asio::detached);
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
}

asio::awaitable<Lease> ConnectionPool::acquire() {
  auto self = impl_;
  for (;;) {
    if (self->stopped)
      co_return Lease{nullptr, {false, local_result(Outcome::deferred, "4.3.2", "mailhop is shutting down")}, "none", true};
    while (!self->idle.empty()) {
      Idle entry = std::move(self->idle.back());
      self->idle.pop_back();
      entry.timer->cancel();
      if (co_await entry.client->reset()) co_return Lease{std::move(entry.client), {true, {}}, {}};
      spdlog::debug("relay {}: idle connection no longer usable", entry.client->relay_name());
      --self->open;  // closed by reset(); its slot is free
    }
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
      auto result = co_await client->connect();
      record_connect(result, *client);
      if (result.ok) {
        spdlog::debug("relay {}: connected ({} of {} connections)", client->relay_name(), self->open, self->limit());
        std::string name = client->relay_name();
        co_return Lease{std::move(client), std::move(result), std::move(name)};
      }
      --self->open;
      self->freed.cancel_one();
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
  if (!client->usable()) {
    --self.open;
    self.freed.cancel_one();
    return;
  }
  if (self.stopped) {
    self.close_in_background(std::move(client));
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
  self.stopped = true;
  while (!self.idle.empty()) {
    auto client = std::move(self.idle.back().client);
    self.idle.back().timer->cancel();
    self.idle.pop_back();
    self.close_in_background(std::move(client));
  }
  self.freed.cancel();
}

std::size_t ConnectionPool::open() const { return impl_->open; }
std::size_t ConnectionPool::idle() const { return impl_->idle.size(); }

}  // namespace mailhop::delivery
