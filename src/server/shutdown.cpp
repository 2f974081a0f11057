// The server's stop request, observable by sessions.
#include "mailhop/server/shutdown.hpp"

#include <utility>

namespace mailhop::server {

ShutdownSignal::Subscription::Subscription(Subscription&& other) noexcept
    : signal_(std::exchange(other.signal_, nullptr)), key_(other.key_) {}

ShutdownSignal::Subscription& ShutdownSignal::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    if (signal_) signal_->unsubscribe(key_);
    signal_ = std::exchange(other.signal_, nullptr);
    key_ = other.key_;
  }
  return *this;
}

ShutdownSignal::Subscription::~Subscription() {
  if (signal_) signal_->unsubscribe(key_);
}

ShutdownSignal::Subscription ShutdownSignal::subscribe(Callback callback) {
  std::lock_guard lock(mutex_);
  auto key = next_key_++;
  callbacks_.emplace(key, std::move(callback));
  return Subscription(this, key);
}

void ShutdownSignal::request() {
  std::lock_guard lock(mutex_);
  if (requested_.exchange(true, std::memory_order_acq_rel)) return;
  for (auto& [key, callback] : callbacks_) callback();
}

void ShutdownSignal::unsubscribe(std::uint64_t key) {
  std::lock_guard lock(mutex_);
  callbacks_.erase(key);
}

}  // namespace mailhop::server
