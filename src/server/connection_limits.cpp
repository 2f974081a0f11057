// Open-connection counts for the listener's limits.
#include "mailhop/server/connection_limits.hpp"

namespace mailhop::server {

struct ConnectionLimits::State {
  std::size_t max_total;
  std::size_t max_per_ip;
  mutable std::mutex mutex;
  std::size_t total = 0;
  std::map<boost::asio::ip::address, std::size_t> per_ip;
};

ConnectionLimits::Slot::Slot(std::shared_ptr<State> state, boost::asio::ip::address address)
    : state_(std::move(state)), address_(address) {}

ConnectionLimits::Slot& ConnectionLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    address_ = other.address_;
  }
  return *this;
}

ConnectionLimits::Slot::~Slot() { release(); }

void ConnectionLimits::Slot::release() {
  if (!state_) return;
  // The reference is dropped only after the unlock: this slot may hold the last one (a session
  // outliving its listener), and the mutex must not be freed while it is held.
  auto state = std::move(state_);
  std::lock_guard lock(state->mutex);
  --state->total;
  auto it = state->per_ip.find(address_);
  if (it != state->per_ip.end() && --it->second == 0) state->per_ip.erase(it);
}

ConnectionLimits::ConnectionLimits(std::size_t max_total, std::size_t max_per_ip)
    : state_(std::make_shared<State>()) {
  state_->max_total = max_total;
  state_->max_per_ip = max_per_ip;
}

ConnectionLimits::Acquired ConnectionLimits::acquire(const boost::asio::ip::address& client, bool exempt) {
  std::lock_guard lock(state_->mutex);
  if (state_->max_total != 0 && state_->total >= state_->max_total) return {std::nullopt, Refusal::total};
  auto& count = state_->per_ip[client];
  if (!exempt && state_->max_per_ip != 0 && count >= state_->max_per_ip) {
    if (count == 0) state_->per_ip.erase(client);
    return {std::nullopt, Refusal::per_ip};
  }
  ++count;
  ++state_->total;
  return {Slot(state_, client), Refusal::total};
}

std::size_t ConnectionLimits::total() const {
  std::lock_guard lock(state_->mutex);
  return state_->total;
}

std::size_t ConnectionLimits::from(const boost::asio::ip::address& client) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->per_ip.find(client);
  return it == state_->per_ip.end() ? 0 : it->second;
}

}  // namespace mailhop::server
