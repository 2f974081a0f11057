// Group commit: one thread that makes many messages durable with one flush.
//
// Requests (commit a prepared message, install an updated envelope, remove a message) queue up
// while a flush runs; the committer then takes all of them as one batch:
//
//   0. removals first, completed at once (they are not flushed, see 3): move env/ID into
//      spare/ (the removal's commit point), then msg/ID. A delivery worker so never waits for
//      the commits' flush to take its next message. A removal that follows an update of the
//      same message in the batch keeps its place in step 2 instead;
//   1. syncfs() on the spool's file system: the content files, the envelope temporaries and
//      the content renames into msg/ are on stable storage (one journal commit for the batch);
//      spare files released before this flush become reusable (spare_files.hpp);
//   2. in the order the requests arrived, the commit point of each:
//      - commit: rename the envelope temporary to env/ID;
//      - update: exchange the temporary and env/ID (renameat2 RENAME_EXCHANGE: env/ID is the
//        new envelope, the old one comes back under the temporary's name and goes to spare/;
//        plain rename where the file system cannot exchange); ENOENT when the message was
//        removed meanwhile, so an update never brings a message back;
//      - remove (only one that follows an update of its message, else see 0): as in 0;
//   3. fsync(env/) when the batch committed or updated anything: those callers resume only
//      once their directory entries are on stable storage. A batch of removals alone is NOT
//      flushed: its renames reach the disk with the next batch's flush or the file system's own
//      periodic commit (ext4: 5 s). A crash in that window brings the removed message back and
//      it is delivered again (at-least-once, as Postfix, which unlinks queue files without a
//      directory fsync) — a message is never lost that way;
//   4. complete every request, each on its caller's executor.
//
// So a caller resumes only after the flush that covers its own message, N concurrent
// messages cost two flushes instead of 2N, and delivered messages cost no flush at all.
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
  void process(std::vector<CommitRequest>& batch);

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
