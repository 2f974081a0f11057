// A delivery worker: takes due messages from the Scheduler, relays each through a pooled
// RelayClient, records every recipient's outcome in the envelope at once (spool::update), logs
// one line per recipient, and when nothing is pending sends a bounce for the failed ones and
// removes the message.
//
// Threads: workers run on the delivery strand.
#pragma once

#include <memory>
#include <optional>
#include <random>

#include <boost/asio/awaitable.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/delivery/connection_pool.hpp"
#include "mailhop/delivery/scheduler.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::delivery {

struct WorkerContext {
  std::shared_ptr<const config::Config> config;
  spool::Spool& spool;
  Scheduler& scheduler;
  ConnectionPool& pool;
  std::mt19937_64 random{std::random_device{}()};  // retry jitter
};

// Until the scheduler stops.
boost::asio::awaitable<void> run_worker(std::shared_ptr<WorkerContext> context, unsigned number);

// One delivery attempt for the message's pending recipients. Returns the envelope when the
// message stays queued (due at its next_attempt), nullopt when it left the queue.
boost::asio::awaitable<std::optional<spool::Envelope>> deliver(WorkerContext& context, spool::Envelope envelope);

}  // namespace mailhop::delivery
