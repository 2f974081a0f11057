// The in-memory schedule: which queued message is due when. Nothing polls: a message enqueued
// by the server is due at once and wakes a waiting worker; a deferred one gets a steady_timer
// for its next attempt; a held one waits until it is enqueued again unheld.
//
// Threads: every call is made on the delivery strand (the executor given here); the schedule
// needs no lock. A message is handed to one worker at a time: while it is out, adding it again
// only marks it to be due once more when the worker hands it back.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "mailhop/spool/envelope.hpp"

namespace mailhop::delivery {

class Scheduler {
 public:
  explicit Scheduler(boost::asio::any_io_executor strand);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // A message to deliver: due at its next_attempt (at once when that has passed).
  void add(spool::Envelope envelope);
  // The worker is done with a message: `envelope` (still queued) is due at its next_attempt,
  // or nullopt when it left the queue.
  void done(const spool::QueueId& id, std::optional<spool::Envelope> envelope);
  // The next due message, waiting until there is one; nullopt once stop() was called.
  boost::asio::awaitable<std::optional<spool::Envelope>> next();
  // Wakes every waiting worker with nullopt and cancels the timers.
  void stop();

  std::size_t queued() const;  // messages known, due or not
  std::size_t due() const;     // due and waiting for a worker

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::delivery
