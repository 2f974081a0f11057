// The durable queue on disk. `commit()` returns only when a message's content and envelope,
// directory entries included, are on stable storage; many sessions' commits share one flush
// (group commit). Layout and format: docs/spool.md.
//
// Threads: the asynchronous calls may be made from any io_context thread; the blocking disk
// work runs on the spool's own threads, never on the caller's, and each call completes on the
// caller's executor. The blocking calls (open, recover, load, list, read_content_sync) are for
// start-up and the command line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "mailhop/spool/envelope.hpp"
#include "mailhop/spool/queue_id.hpp"

namespace mailhop::spool {

struct RecoveryReport {
  std::vector<Envelope> queued;           // recover(): every message still in the queue, oldest first
  std::vector<std::string> quarantined;   // files moved to corrupt/, with why
  std::size_t temporaries_removed = 0;    // leftovers of stores that never committed (recycled)
  std::size_t scanned = 0;                // scan_queue(): envelopes handed to the callback
};

// A message being received: content goes to a temporary file as it arrives.
class Incoming {
 public:
  virtual ~Incoming() = default;
  virtual const QueueId& id() const = 0;
  virtual std::uint64_t size() const = 0;  // bytes appended so far
};

// Counters of the commit path since open(): how well group commit shares flushes
// (commits / flushes), for tests, metrics and the benchmark.
struct SpoolStats {
  std::uint64_t commits = 0;   // messages made durable (commit and store)
  std::uint64_t updates = 0;   // envelopes replaced
  std::uint64_t removes = 0;   // messages removed
  std::uint64_t failures = 0;  // requests that failed (nothing of them left behind)
  std::uint64_t batches = 0;   // rounds of the committer
  std::uint64_t flushes = 0;   // rounds that flushed to stable storage (0 when not durable)
  std::uint64_t files_recycled = 0;  // spool files taken from spare/ (no inode allocated)
  std::uint64_t files_created = 0;   // spool files created because spare/ had none ready
};

class Spool {
 public:
  struct Options {
    std::filesystem::path root;
    // Flushes (fsync/syncfs) on; off only for tests that measure nothing durable.
    bool durable = true;
  };

  explicit Spool(Options options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  const std::filesystem::path& root() const;

  // Creates the directory layout when missing. Throws std::system_error naming the path.
  void open();
  // Start-up scan: recycles temporaries, quarantines what cannot be read (corrupt/, with a log
  // line), returns the rest, oldest first. Never throws for a bad file. The same as
  // recover_temporaries() then scan_queue() collecting every batch.
  RecoveryReport recover();

  // The start-up scan in two phases, so the daemon can accept mail before a long queue is read:
  //
  // 1. recover_temporaries() (quick: three directory listings, no file read): opens the spool,
  //    recycles tmp/ leftovers and content without an envelope into spare/, and notes which
  //    envelopes were queued before this process. Must run before any begin(); blocking.
  // 2. scan_queue(on_batch) reads exactly those envelopes (several threads), quarantines what
  //    cannot be trusted and calls `on_batch` on the calling thread with each batch of intact
  //    envelopes (up to `batch_size`, in no particular order) as soon as it is read; returns
  //    when all were handed over. Receiving, committing, updating and removing may run
  //    concurrently: messages committed meanwhile are never part of the scan; one delivered
  //    and removed from an earlier batch is fine. Call once per recover_temporaries().
  RecoveryReport recover_temporaries();
  RecoveryReport scan_queue(const std::function<void(std::vector<Envelope>&)>& on_batch, std::size_t batch_size = 1024);

  // Receiving: begin, append chunks as they arrive, then commit or drop the unique_ptr
  // (which discards the temporary file). An Incoming must not outlive its Spool; a failed
  // append makes the later commit fail with the same error.
  std::unique_ptr<Incoming> begin();
  boost::asio::awaitable<std::error_code> append(Incoming& message, std::string chunk);
  // Makes the message durable under envelope.id (set to message.id()) with envelope.size set.
  // On error (disk full: std::errc::no_space_on_device) nothing of it is left in the queue.
  boost::asio::awaitable<std::error_code> commit(Incoming& message, Envelope& envelope);
  // append(message, tail) then commit(message, envelope) in one hand-off to the spool's threads
  // (a small message is written whole here: one trip to a spool thread instead of two).
  boost::asio::awaitable<std::error_code> commit(Incoming& message, std::string tail, Envelope& envelope);

  // Replaces the envelope atomically (new file + exchange), durable on return; ENOENT when the
  // message is not queued (never brings a removed message back).
  boost::asio::awaitable<std::error_code> update(const Envelope& envelope);
  // Removes content and envelope (their files are recycled). NOT flushed by itself: a crash
  // before the next flush may bring the message back (delivered again, never lost; docs/spool.md).
  boost::asio::awaitable<std::error_code> remove(const QueueId& id);
  // Stores a message made whole in memory (a bounce): same durability as commit().
  boost::asio::awaitable<std::error_code> store(Envelope& envelope, std::string content);
  // Up to `max` bytes of content from `offset`; an empty string at the end.
  boost::asio::awaitable<std::pair<std::error_code, std::string>> read_content(const QueueId& id,
                                                                              std::uint64_t offset,
                                                                              std::size_t max);

  // Blocking reads for start-up and the command line.
  std::optional<Envelope> load(const QueueId& id, std::string* error = nullptr) const;
  std::vector<Envelope> list() const;  // oldest first; unreadable envelopes skipped
  bool contains(const QueueId& id) const;  // its envelope is present (readable or not)
  std::optional<std::string> read_content_sync(const QueueId& id) const;

  SpoolStats stats() const;

  // Waits until the spool's threads have finished every operation handed to them, each one
  // completed to its caller's executor, and ends those threads. For an owner whose io_context
  // may be stopped with spool operations in flight (io_context::stop(), run_for()): call it
  // once that io_context no longer runs and before it is destroyed, since a spool thread
  // touches the io_context until it has handed the result over (util/run_on.hpp). No
  // asynchronous call may follow. The destructor does the same.
  void join();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailhop::spool
