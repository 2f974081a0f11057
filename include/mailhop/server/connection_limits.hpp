// Counts open connections, in total and per client address, so the listener can refuse a
// connection over a limit with 421 before a session starts. Thread-safe: accept loops and
// ending sessions may run on different io_context threads.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/ip/address.hpp>

namespace mailhop::server {

class ConnectionLimits {
  struct State;

 public:
  // Held for as long as a connection is open; releases its count when destroyed.
  class Slot {
   public:
    Slot(Slot&&) noexcept = default;
    Slot& operator=(Slot&&) noexcept;
    ~Slot();

   private:
    friend class ConnectionLimits;
    Slot(std::shared_ptr<State> state, boost::asio::ip::address address);
    void release();
    std::shared_ptr<State> state_;
    boost::asio::ip::address address_;
  };

  enum class Refusal { total, per_ip };

  // 0 means no limit.
  ConnectionLimits(std::size_t max_total, std::size_t max_per_ip);

  // A slot, or why there is none. `exempt` clients skip the per-IP limit (not the total one).
  struct Acquired {
    std::optional<Slot> slot;
    Refusal refusal = Refusal::total;  // when !slot
  };
  Acquired acquire(const boost::asio::ip::address& client, bool exempt);

  std::size_t total() const;
  std::size_t from(const boost::asio::ip::address& client) const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mailhop::server
