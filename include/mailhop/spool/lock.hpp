// The spool lock: one daemon per spool. `mailhop run` takes an exclusive flock(2) on
// <spool>/lock and holds it for its whole life; a second daemon on the same spool is refused
// with the holder's pid. The kernel drops the lock when the process dies, however it dies, so a
// restart right after kill -9 is never refused (no stale pid file to clean up).
//
// The command line uses the same lock to tell whether a daemon runs: held → talk to the daemon
// (admin API); free → edit the spool directly, holding the lock meanwhile.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

namespace mailhop::spool {

class SpoolLock {
 public:
  enum class Status { acquired, held_elsewhere, error };

  // Tries once, never waits. On held_elsewhere, `holder` is the pid written by the holder (when
  // readable); on error, `error` says why (no permission, missing directory).
  struct Attempt;
  static Attempt try_acquire(const std::filesystem::path& spool_root);
  // true when another process holds the lock; does not create the file or take the lock.
  static bool held_elsewhere(const std::filesystem::path& spool_root);

  SpoolLock(SpoolLock&& other) noexcept;
  SpoolLock& operator=(SpoolLock&& other) noexcept;
  SpoolLock(const SpoolLock&) = delete;
  SpoolLock& operator=(const SpoolLock&) = delete;
  ~SpoolLock();  // releases the lock

  static std::filesystem::path path(const std::filesystem::path& spool_root);

 private:
  explicit SpoolLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

struct SpoolLock::Attempt {
  Status status = Status::error;
  std::optional<SpoolLock> lock;  // when acquired
  std::string holder;             // pid of the holder, when held_elsewhere and known
  std::error_code error;          // when error
};

}  // namespace mailhop::spool
