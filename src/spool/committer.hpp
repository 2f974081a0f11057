// Group commit: one thread that makes many messages durable with one flush.
//
// Requests (commit a prepared message, install an updated envelope, remove a message) queue up
// while a flush runs; the committer then takes all of them as one batch:
//
//   1. syncfs() on the spool's file system: the content files, the envelope temporaries and
//      the content renames into msg/ are on stable storage (one journal commit for the batch);
//   2. rename each envelope temporary to env/ID (or unlink env/ID for a removal), in the order
//      the requests arrived; this is the commit point of each message;
//   3. fsync(env/): the renames and unlinks are on stable storage;
//   4. unlink the content of removed messages (an orphan left by a crash here is removed by
//      recovery), then complete every request, each on its caller's executor.
//
// So a caller resumes only after the flush that covers its own message, and N concurrent
// messages cost two flushes instead of 2N. Internal to the spool module.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "completion.hpp"
#include "files.hpp"

namespace mailhop::spool::detail {

struct CommitRequest {
  enum class Kind { commit, update, remove };
  Kind kind = Kind::commit;
  QueueId id;
  std::filesystem::path envelope_tmp;  // commit, update: the new envelope, written, not flushed
  Completion<std::error_code> completion;
};

struct CommitterStats {
  std::atomic<std::uint64_t> batches{0};  // rounds of the committer loop
  std::atomic<std::uint64_t> flushes{0};  // rounds that flushed (syncfs + directory fsync)
  std::atomic<std::uint64_t> commits{0};  // messages committed
  std::atomic<std::uint64_t> updates{0};
  std::atomic<std::uint64_t> removes{0};
  std::atomic<std::uint64_t> failures{0};
};

class Committer {
 public:
  // `root_fd` is any descriptor on the spool's file system (for syncfs).
  Committer(const Layout& layout, int root_fd, bool durable);
  ~Committer();  // finishes every queued request, then joins
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void submit(CommitRequest request);
  const CommitterStats& stats() const { return stats_; }

 private:
  void run();
  void process(std::vector<CommitRequest>& batch);

  const Layout& layout_;
  int root_fd_;
  bool durable_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<CommitRequest> queue_;
  bool stopping_ = false;
  CommitterStats stats_;
  std::thread thread_;
};

}  // namespace mailhop::spool::detail
