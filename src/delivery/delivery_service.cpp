// DeliveryService: wires the Scheduler, the ConnectionPool and delivery.workers worker
// coroutines together on one strand (see mailhop/delivery/delivery.hpp).
//
// Why one strand for all of delivery: the schedule, the pool and the workers then share state
// without a lock, and the work is network-bound (at most max_connections sockets to one next
// hop); the disk work runs on the spool's own threads and the inbound side on the others.
#include "mailhop/delivery/delivery.hpp"

#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/delivery/connection_pool.hpp"
#include "mailhop/delivery/relay_client.hpp"
#include "mailhop/delivery/scheduler.hpp"
#include "mailhop/delivery/worker.hpp"
#include "mailhop/tls/client.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;

struct DeliveryService::Impl {
  std::shared_ptr<const config::Config> config;
  spool::Spool& spool;
  asio::strand<asio::io_context::executor_type> strand;
  std::shared_ptr<asio::ssl::context> tls;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<ConnectionPool> pool;
  std::shared_ptr<WorkerContext> workers;
  bool started = false;
  bool stopped = false;

  Impl(asio::io_context& io, std::shared_ptr<const config::Config> c, spool::Spool& s)
      : config(std::move(c)), spool(s), strand(asio::make_strand(io)) {}
};

DeliveryService::DeliveryService(asio::io_context& io, std::shared_ptr<const config::Config> config,
                                 spool::Spool& spool)
    : impl_(std::make_shared<Impl>(io, std::move(config), spool)) {}

DeliveryService::~DeliveryService() = default;

void DeliveryService::start(std::vector<spool::Envelope> recovered) {
  auto& self = *impl_;
  const auto& relay = self.config->relay;
  // A start-up failure (unreadable ca_file) throws here, before anything runs.
  if (relay.tls != config::RelayTls::none) self.tls = tls::make_client_context(relay);
  if (relay.tls != config::RelayTls::none && !relay.verify)
    spdlog::warn("relay.verify is false: the certificate of {} is not checked, so the connection can be intercepted",
                 relay.host);
  if (relay.tls == config::RelayTls::opportunistic && relay.username)
    spdlog::warn("relay.tls is opportunistic: credentials are only sent when {} offers STARTTLS", relay.host);

  self.scheduler = std::make_unique<Scheduler>(self.strand);
  self.pool = std::make_unique<ConnectionPool>(self.strand, self.config, self.tls);
  self.workers = std::make_shared<WorkerContext>(WorkerContext{self.config, self.spool, *self.scheduler, *self.pool});
  self.started = true;

  const unsigned count = std::max(1u, self.config->delivery.workers);
  asio::post(self.strand, [impl = impl_, recovered = std::move(recovered), count]() mutable {
    if (impl->stopped) return;
    std::size_t held = 0;
    for (auto& envelope : recovered) {
      held += envelope.held ? 1 : 0;
      impl->scheduler->add(std::move(envelope));
    }
    spdlog::info("delivery: {} queued message(s) scheduled ({} held), {} workers, at most {} connection(s) to {}:{}",
                 impl->scheduler->queued(), held, count, impl->config->delivery.max_connections,
                 impl->config->relay.host, impl->config->relay.port);
    for (unsigned n = 1; n <= count; ++n) {
      asio::co_spawn(impl->strand, run_worker(impl->workers, n), [n](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::critical("delivery worker {} failed: {}", n, ex.what());
        }
      });
    }
  });
}

void DeliveryService::enqueue(const spool::Envelope& envelope) {
  asio::post(impl_->strand, [impl = impl_, envelope]() mutable {
    if (!impl->started || impl->stopped) return;  // recovery at the next start will find it
    impl->scheduler->add(std::move(envelope));
  });
}

// ---- operator control: free coroutines on the strand (GCC 12: no capturing lambda co_spawned
// with use_awaitable) ----

namespace {

using Impl = DeliveryService::Impl;
using ControlStatus = DeliveryService::ControlStatus;
using ControlResult = DeliveryService::ControlResult;

ControlResult not_running() { return {ControlStatus::failed, "delivery is not running"}; }

asio::awaitable<ControlResult> do_hold(std::shared_ptr<Impl> impl, spool::QueueId id, bool held) {
  if (!impl->started || impl->stopped) co_return not_running();
  auto& scheduler = *impl->scheduler;
  const auto where = scheduler.where(id);
  if (where == Scheduler::Where::absent) co_return ControlResult{ControlStatus::not_found, {}};
  if (where == Scheduler::Where::out) {
    scheduler.set_held(id, held);  // the worker records it when the attempt ends
    co_return ControlResult{ControlStatus::after_attempt, {}};
  }
  spool::Envelope envelope = *scheduler.find(id);
  if (envelope.held == held) co_return ControlResult{ControlStatus::done, {}};
  envelope.held = held;
  // Hold: stop handing it out first, then persist. Release: persist first, then make it due,
  // so a worker's later update cannot be overtaken by this one.
  if (held) scheduler.set_held(id, true);
  if (auto ec = co_await impl->spool.update(envelope))
    co_return ControlResult{ControlStatus::failed, "cannot update the envelope: " + ec.message()};
  if (!held && scheduler.where(id) != Scheduler::Where::absent) scheduler.set_held(id, false);
  spdlog::info("{}: {} by the operator", id.str(), held ? "held" : "released");
  co_return ControlResult{ControlStatus::done, {}};
}

asio::awaitable<ControlResult> do_retry(std::shared_ptr<Impl> impl, spool::QueueId id) {
  if (!impl->started || impl->stopped) co_return not_running();
  auto& scheduler = *impl->scheduler;
  const auto where = scheduler.where(id);
  if (where == Scheduler::Where::absent) co_return ControlResult{ControlStatus::not_found, {}};
  if (!scheduler.retry(id)) co_return ControlResult{ControlStatus::conflict, "the message is held: release it"};
  co_return ControlResult{where == Scheduler::Where::out ? ControlStatus::after_attempt : ControlStatus::done, {}};
}

asio::awaitable<ControlResult> do_remove(std::shared_ptr<Impl> impl, spool::QueueId id) {
  if (!impl->started || impl->stopped) co_return not_running();
  auto& scheduler = *impl->scheduler;
  if (scheduler.where(id) == Scheduler::Where::absent) co_return ControlResult{ControlStatus::not_found, {}};
  if (!scheduler.forget(id)) co_return ControlResult{ControlStatus::after_attempt, {}};  // the worker removes it
  if (auto ec = co_await impl->spool.remove(id))
    co_return ControlResult{ControlStatus::failed, "cannot remove the message: " + ec.message()};
  spdlog::info("{}: removed by the operator", id.str());
  co_return ControlResult{ControlStatus::done, {}};
}

asio::awaitable<std::size_t> do_flush(std::shared_ptr<Impl> impl) {
  if (!impl->started || impl->stopped) co_return 0;
  std::size_t n = impl->scheduler->flush();
  spdlog::info("delivery: flush: {} deferred message(s) due now", n);
  co_return n;
}

asio::awaitable<DeliveryService::Status> do_status(std::shared_ptr<Impl> impl) {
  DeliveryService::Status s;
  if (!impl->started) co_return s;
  s.queued = impl->scheduler->queued();
  s.oldest_arrival = impl->scheduler->oldest_arrival();
  s.connections_open = impl->pool->open();
  co_return s;
}

asio::awaitable<util::metrics::NextHopRecord> do_probe(std::shared_ptr<Impl> impl) {
  if (!impl->started || impl->stopped) {
    util::metrics::NextHopRecord none;
    none.at = std::chrono::system_clock::now();
    none.detail = "delivery is not running";
    co_return none;
  }
  co_await impl->pool->probe();
  auto record = util::metrics::registry().last_next_hop();
  co_return record.value_or(util::metrics::NextHopRecord{});
}

}  // namespace

asio::awaitable<ControlResult> DeliveryService::hold(spool::QueueId id) {
  auto r = co_await asio::co_spawn(impl_->strand, do_hold(impl_, id, true), asio::use_awaitable);
  co_return r;
}
asio::awaitable<ControlResult> DeliveryService::release(spool::QueueId id) {
  auto r = co_await asio::co_spawn(impl_->strand, do_hold(impl_, id, false), asio::use_awaitable);
  co_return r;
}
asio::awaitable<ControlResult> DeliveryService::retry(spool::QueueId id) {
  auto r = co_await asio::co_spawn(impl_->strand, do_retry(impl_, id), asio::use_awaitable);
  co_return r;
}
asio::awaitable<ControlResult> DeliveryService::remove(spool::QueueId id) {
  auto r = co_await asio::co_spawn(impl_->strand, do_remove(impl_, id), asio::use_awaitable);
  co_return r;
}
asio::awaitable<std::size_t> DeliveryService::flush() {
  auto n = co_await asio::co_spawn(impl_->strand, do_flush(impl_), asio::use_awaitable);
  co_return n;
}
asio::awaitable<DeliveryService::Status> DeliveryService::status() {
  auto s = co_await asio::co_spawn(impl_->strand, do_status(impl_), asio::use_awaitable);
  co_return s;
}
asio::awaitable<util::metrics::NextHopRecord> DeliveryService::probe() {
  auto r = co_await asio::co_spawn(impl_->strand, do_probe(impl_), asio::use_awaitable);
  co_return r;
}

void DeliveryService::reconfigure(std::shared_ptr<const config::Config> config) {
  // Made here, outside the strand: a failure leaves the running settings untouched.
  std::shared_ptr<asio::ssl::context> tls;
  if (config->relay.tls != config::RelayTls::none) tls = tls::make_client_context(config->relay);
  asio::post(impl_->strand, [impl = impl_, config = std::move(config), tls = std::move(tls)]() mutable {
    if (!impl->started || impl->stopped) return;
    const auto& relay = config->relay;
    if (impl->config->relay != relay)
      spdlog::info("delivery: new relay connections go to {}:{} (tls {})", relay.host, relay.port, config::to_string(relay.tls));
    impl->tls = tls;
    impl->pool->reconfigure(config, tls);
    impl->workers->config = config;  // each attempt takes its own reference (worker.cpp)
    impl->config = std::move(config);
  });
}

void DeliveryService::stop() {
  asio::post(impl_->strand, [impl = impl_] {
    if (impl->stopped || !impl->started) {
      impl->stopped = true;
      return;
    }
    impl->stopped = true;
    impl->scheduler->stop();
    impl->pool->stop();
    spdlog::info("delivery: stopping ({} message(s) stay queued)", impl->scheduler->queued());
  });
}

}  // namespace mailhop::delivery
