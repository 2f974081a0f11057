// The outbound side: a scheduler that knows which message is due when, and worker coroutines
// that relay due messages through RelayClient connections to the next hop.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/spool/envelope.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::delivery {

class DeliveryService {
 public:
  DeliveryService(boost::asio::io_context& io, std::shared_ptr<const config::Config> config, spool::Spool& spool);
  ~DeliveryService();

  // Schedules what recovery found and starts the workers.
  void start(std::vector<spool::Envelope> recovered);
  // A message just became durable: deliver it now. Thread-safe.
  void enqueue(const spool::Envelope& envelope);
  // Graceful stop: no new attempts; in-flight transactions finish or are abandoned with the
  // message still queued; idle connections get QUIT.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::delivery
