// The spool lock (see mailhop/spool/lock.hpp): flock(2) on <spool>/lock, with the holder's pid
// written into the file for the error message of whoever is refused.
//
// SECURITY: the file is opened with O_NOFOLLOW (a symlink planted in the spool cannot make the
// daemon truncate another file) and created mode 0600.
#include "mailhop/spool/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace mailhop::spool {

namespace {

std::string read_holder(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char c : s)
    if (c < '0' || c > '9') return {};
  return s;
}

}  // namespace

std::filesystem::path SpoolLock::path(const std::filesystem::path& spool_root) { return spool_root / "lock"; }

SpoolLock::Attempt SpoolLock::try_acquire(const std::filesystem::path& spool_root) {
  Attempt a;
  const auto p = path(spool_root);
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    a.error = std::error_code(errno, std::generic_category());
    return a;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      a.status = Status::held_elsewhere;
      a.holder = read_holder(fd);
    } else {
      a.error = std::error_code(e, std::generic_category());
    }
    ::close(fd);
    return a;
  }
  // Ours now: record our pid (for the message of a second daemon). Not fsync'd: it only matters
  // while we live.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] auto n = ::pwrite(fd, pid.data(), pid.size(), 0);
  }
  a.status = Status::acquired;
  a.lock.emplace(SpoolLock(fd));
  return a;
}

bool SpoolLock::held_elsewhere(const std::filesystem::path& spool_root) {
  int fd = ::open(path(spool_root).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;  // no lock file: no daemon ever ran here
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the shared lock, if we got it
  return held;
}

SpoolLock::SpoolLock(SpoolLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

SpoolLock& SpoolLock::operator=(SpoolLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

SpoolLock::~SpoolLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace mailhop::spool
