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
#include <spdlog/spdlog.h>

#include "mailhop/delivery/connection_pool.hpp"
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
