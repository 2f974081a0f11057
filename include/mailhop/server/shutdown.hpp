// The server's stop request as something sessions can observe: a flag plus a list of callbacks
// that wake sessions up while they wait for a command. A session that is receiving a message
// finishes it (or times out); one waiting for its next command answers 421 and closes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace mailhop::server {

class ShutdownSignal {
 public:
  using Callback = std::function<void()>;

  // Unsubscribes when destroyed.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    ~Subscription();

   private:
    friend class ShutdownSignal;
    Subscription(ShutdownSignal* signal, std::uint64_t key) : signal_(signal), key_(key) {}
    ShutdownSignal* signal_ = nullptr;
    std::uint64_t key_ = 0;
  };

  // `callback` runs once, on the thread that calls request(), under a lock: it must only post
  // work to the subscriber's executor. Not called when the request came before subscribing;
  // check requested() after subscribing.
  [[nodiscard]] Subscription subscribe(Callback callback);
  // Idempotent.
  void request();
  bool requested() const { return requested_.load(std::memory_order_acquire); }

 private:
  void unsubscribe(std::uint64_t key);

  std::atomic<bool> requested_{false};
  mutable std::mutex mutex_;
  std::map<std::uint64_t, Callback> callbacks_;
  std::uint64_t next_key_ = 1;
};

}  // namespace mailhop::server
