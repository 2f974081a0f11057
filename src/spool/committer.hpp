// Group commit: one thread that makes many messages durable with few flushes.
//
// Requests (commit a prepared message, install an updated envelope, remove a message) queue up
// while the committer works; it takes all of them at once and runs them through a two-stage
// pipeline, one flush per round:
//
//   1. the commit points of the requests whose data the LAST round's flush made durable, in the
//      order they arrived:
//      - commit: rename the envelope temporary to env/ID;
//      - update: exchange the temporary and env/ID (renameat2 RENAME_EXCHANGE: env/ID is the
//        new envelope, the old one comes back under the temporary's name and goes to spare/;
//        plain rename where the file system cannot exchange); ENOENT when the message was
//        removed meanwhile, so an update never brings a message back;
//      - remove (only one that followed an update of its message): as in 2;
//   2. the new removals, done and completed at once: move env/ID into spare/ (the removal's
//      commit point), then msg/ID. They are NOT flushed: their renames reach the disk with a
//      later flush or the file system's own periodic commit (ext4: 5 s). A crash in that
//      window brings the removed message back and it is delivered again (at-least-once, as
//      Postfix, which unlinks queue files without a directory fsync) — never lost. A delivery
//      worker so never waits for other messages' flush;
//   3. ONE flush for both stages: syncfs() on the spool's file system when new commits or
//      updates came in (their content files, envelope temporaries and the content renames into
//      msg/, together with the directory entries of step 1), else fsync(env/) for the entries
//      of step 1 alone; spare files released before it become reusable (spare_files.hpp);
//   4. complete the requests of step 1, each on its caller's executor. The new commits and
//      updates go on to step 1 of the next round, which starts at once.
//
// So an envelope is never in env/ before its data is on stable storage, a caller resumes only
// after the flush that covers its own directory entry, a commit costs two flushes shared with
// every other message in flight (under load: one flush per round serves two batches), and
// delivered messages cost no flush at all. Without durability the same pipeline runs, with no
// flush.
// Internal to the spool module.
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

#include "files.hpp"
#include "mailhop/util/run_on.hpp"
#include "spare_files.hpp"

namespace mailhop::spool::detail {

struct CommitRequest {
  enum class Kind { commit, update, remove };
  Kind kind = Kind::commit;
  QueueId id;
  std::filesystem::path envelope_tmp;  // commit, update: the new envelope, written, not flushed
  util::Completion<std::error_code> completion;
};

struct CommitterStats {
  std::atomic<std::uint64_t> batches{0};  // rounds of the committer loop
  std::atomic<std::uint64_t> flushes{0};  // rounds that flushed (syncfs and/or directory fsync)
  std::atomic<std::uint64_t> commits{0};  // messages committed
  std::atomic<std::uint64_t> updates{0};
  std::atomic<std::uint64_t> removes{0};
  std::atomic<std::uint64_t> failures{0};
};

class Committer {
 public:
  // `root_fd` is any descriptor on the spool's file system (for syncfs).
  Committer(const Layout& layout, int root_fd, bool durable, SpareFiles& spare);
  ~Committer();  // join()
  // Finishes every queued request, then ends the thread. Idempotent; no submit() after it.
  void join();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void submit(CommitRequest request);
  const CommitterStats& stats() const { return stats_; }

 private:
  void run();
  // One round of the pipeline (see above): the commit points of `ready`, the new removals of
  // `fresh`, one flush, `ready` completed; leaves in `fresh` what waits for the next round.
  void round(std::vector<CommitRequest>& ready, std::vector<CommitRequest>& fresh);

  std::error_code install_update(const CommitRequest& r);

  const Layout& layout_;
  int root_fd_;
  SpareFiles& spare_;
  bool can_exchange_ = true;  // cleared for good the first time the file system says EINVAL
  bool durable_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<CommitRequest> queue_;
  bool stopping_ = false;
  CommitterStats stats_;
  std::thread thread_;
};

}  // namespace mailhop::spool::detail
