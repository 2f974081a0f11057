// The outbound side: a scheduler that knows which message is due when, and worker coroutines
// that relay due messages through RelayClient connections to the next hop.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/spool/envelope.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/util/metrics.hpp"

namespace mailhop::delivery {

class DeliveryService {
 public:
  DeliveryService(boost::asio::io_context& io, std::shared_ptr<const config::Config> config, spool::Spool& spool);
  ~DeliveryService();

  // Schedules what recovery found and starts the workers.
  void start(std::vector<spool::Envelope> recovered);
  // A message just became durable: deliver it now. Thread-safe.
  void enqueue(const spool::Envelope& envelope);
  // Graceful stop: no new attempts; connections still connecting or waiting for a greeting
  // are closed at once; transactions in progress may finish for delivery.shutdown_grace, then
  // are abandoned with the message still queued; idle connections get QUIT.
  void stop();
  // SIGHUP: new relay connections and attempts use `config` (relay settings, retry, the
  // connection limit). The relay TLS client context is made again from it here, so an
  // unreadable relay.ca_file throws (std::exception naming it) and changes nothing. When the
  // relay settings changed, idle connections are closed. delivery.workers stays as started.
  // Call from any thread.
  void reconfigure(std::shared_ptr<const config::Config> config);

  // Operator control (admin API). Each call may be awaited from any executor; the change is
  // made on the delivery strand and, for hold/release/remove, on disk before it completes.
  // A message out with a worker right now is changed when its attempt ends: the attempt uses
  // the envelope as it was, so it is finished (never cut off half-way) and then held or removed.
  enum class ControlStatus {
    done,
    after_attempt,  // out with a worker: applied when the current attempt ends
    not_found,      // not in the queue
    conflict,       // retry of a held message
    failed,         // disk error, or delivery not running; `detail` says which
  };
  struct ControlResult {
    ControlStatus status = ControlStatus::failed;
    std::string detail;
  };
  boost::asio::awaitable<ControlResult> hold(spool::QueueId id);
  boost::asio::awaitable<ControlResult> release(spool::QueueId id);
  boost::asio::awaitable<ControlResult> retry(spool::QueueId id);
  boost::asio::awaitable<ControlResult> remove(spool::QueueId id);
  // Every deferred message that is not held is due now; returns how many.
  boost::asio::awaitable<std::size_t> flush();

  struct Status {
    std::size_t queued = 0;
    std::optional<util::SystemTime> oldest_arrival;
    std::size_t connections_open = 0;
  };
  boost::asio::awaitable<Status> status();

  // A probe connection to the next hop (connect, TLS and AUTH as configured, QUIT), recorded
  // as the last connection (util::metrics registry) like every pooled one.
  boost::asio::awaitable<util::metrics::NextHopRecord> probe();

  struct Impl;  // opaque (public only so that the .cpp's free coroutines can name it)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::delivery
