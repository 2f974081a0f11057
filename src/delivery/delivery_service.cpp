// DeliveryService: placeholder that only logs, so the daemon links while the real scheduler,
// workers and relay client are written.
#include "mailhop/delivery/delivery.hpp"

#include <spdlog/spdlog.h>

namespace mailhop::delivery {

struct DeliveryService::Impl {
  boost::asio::io_context& io;
  std::shared_ptr<const config::Config> config;
  spool::Spool& spool;
};

DeliveryService::DeliveryService(boost::asio::io_context& io, std::shared_ptr<const config::Config> config,
                                 spool::Spool& spool)
    : impl_(std::make_shared<Impl>(Impl{io, std::move(config), spool})) {}

DeliveryService::~DeliveryService() = default;

void DeliveryService::start(std::vector<spool::Envelope> recovered) {
  spdlog::info("delivery: {} queued message(s) recovered (delivery not implemented yet)", recovered.size());
}

void DeliveryService::enqueue(const spool::Envelope& envelope) {
  spdlog::info("{}: queued for delivery (delivery not implemented yet)", envelope.id.str());
}

void DeliveryService::stop() { spdlog::info("delivery: stopped"); }

}  // namespace mailhop::delivery
