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

  // Operator control (the admin API). A message out with a worker cannot change under it: the
  // change is marked and applied when the worker hands it back (see take_marks()).
  enum class Where { absent, waiting, due, out };
  Where where(const spool::QueueId& id) const;
  const spool::Envelope* find(const spool::QueueId& id) const;  // the in-memory envelope
  // Held: never handed out until released. Returns the envelope to persist (nullptr when
  // absent; when out, the mark is recorded and the envelope as it left is returned).
  const spool::Envelope* set_held(const spool::QueueId& id, bool held);
  // Due now; false when absent or held. Out: due again as soon as it comes back.
  bool retry(const spool::QueueId& id);
  // Every waiting message that is not held becomes due now; returns how many.
  std::size_t flush();
  // Forgets the message (the caller removes it from the spool). Out: marked, false returned,
  // and the worker removes it when its attempt ends.
  bool forget(const spool::QueueId& id);
  // For the worker, before done(): what the operator asked while the message was out.
  struct Marks {
    std::optional<bool> held;
    bool removed = false;
  };
  Marks take_marks(const spool::QueueId& id);
  // The oldest message's arrival (queue IDs sort by arrival), nullopt when empty.
  std::optional<util::SystemTime> oldest_arrival() const;

  std::size_t queued() const;  // messages known, due or not
  std::size_t due() const;     // due and waiting for a worker

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::delivery
