// POSIX wrappers for the spool (see files.hpp): errno as std::error_code, EINTR retried.
#include "files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <limits>

namespace mailhop::spool::detail {

std::error_code errno_code() { return std::error_code(errno, std::generic_category()); }

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

std::error_code Fd::reset() {
  if (fd_ < 0) return {};
  int rc = ::close(fd_);  // never retried: on Linux the descriptor is gone even on EINTR
  fd_ = -1;
  if (rc != 0 && errno != EINTR) return errno_code();
  return {};
}

std::error_code write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_code();
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::error_code write_new_file(const std::filesystem::path& path, std::string_view data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return errno_code();
  if (auto ec = write_all(fd.get(), data)) return ec;
  return fd.reset();
}

Fd open_directory(const std::filesystem::path& dir, std::error_code& ec) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ec = fd ? std::error_code() : errno_code();
  return fd;
}

std::error_code fsync_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  Fd fd = open_directory(dir, ec);
  if (ec) return ec;
  if (::fsync(fd.get()) != 0) return errno_code();
  return {};
}

std::error_code rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return errno_code();
  return {};
}

std::error_code exchange_files(const std::filesystem::path& a, const std::filesystem::path& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) return errno_code();
  return {};
}

std::error_code remove_file(const std::filesystem::path& path, bool missing_ok) {
  if (::unlink(path.c_str()) != 0 && !(missing_ok && errno == ENOENT)) return errno_code();
  return {};
}

std::error_code check_unchanged(int fd, const struct ::stat& opened, int dir_fd, const char* path) {
  struct ::stat now {}, named {};
  if (::fstat(fd, &now) != 0) return errno_code();
  if (::fstatat(dir_fd, path, &named, AT_SYMLINK_NOFOLLOW) != 0) return errno_code();
  bool same = named.st_ino == opened.st_ino && named.st_dev == opened.st_dev && now.st_size == opened.st_size &&
              now.st_ctim.tv_sec == opened.st_ctim.tv_sec && now.st_ctim.tv_nsec == opened.st_ctim.tv_nsec;
  return same ? std::error_code() : std::make_error_code(std::errc::resource_unavailable_try_again);
}

std::optional<std::string> read_file(const std::filesystem::path& path, std::error_code& ec) {
  auto [error, text] = read_range(path, 0, std::numeric_limits<std::size_t>::max(), /*cached_only=*/false);
  ec = error;
  if (ec) return std::nullopt;
  return std::move(text);
}

namespace {

// Kernels before 5.12 (or a seccomp filter) refuse openat2 or RESOLVE_CACHED: then every read
// takes the spool thread, as before.
std::atomic<bool> cached_open_works{true};

const std::error_code kWouldBlock = std::make_error_code(std::errc::operation_would_block);

// O_RDONLY, resolving `path` only from the dentry cache (a cached dentry holds its inode in
// memory, so nothing here reads the disk). kWouldBlock when it cannot.
Fd open_cached(const std::filesystem::path& path, std::error_code& ec) {
  if (!cached_open_works.load(std::memory_order_relaxed)) {
    ec = kWouldBlock;
    return Fd();
  }
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_CACHED;
  Fd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how)));
  if (fd) {
    ec.clear();
    return fd;
  }
  if (errno == ENOSYS || errno == EINVAL || errno == EPERM) cached_open_works.store(false, std::memory_order_relaxed);
  ec = errno == ENOENT ? errno_code() : kWouldBlock;  // a missing name is an answer; the rest: try the slow way
  return fd;
}

}  // namespace

std::pair<std::error_code, std::string> read_range(const std::filesystem::path& path, std::uint64_t offset,
                                                   std::size_t max, bool cached_only) {
  for (int attempt = 0;; ++attempt) {
    std::error_code ec;
    Fd fd = cached_only ? open_cached(path, ec) : Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!cached_only && !fd) ec = errno_code();
    if (ec) return {ec, {}};
    struct ::stat opened {};
    if (::fstat(fd.get(), &opened) != 0) return {errno_code(), {}};
    const auto size = static_cast<std::uint64_t>(std::max<off_t>(opened.st_size, 0));
    // Sized to what the file holds, not to `max`: a 4 KiB message does not cost a 64 KiB buffer.
    std::string out(offset < size ? static_cast<std::size_t>(std::min<std::uint64_t>(max, size - offset)) : 0, '\0');
    std::size_t got = 0;
    while (got < out.size()) {
      iovec iov{out.data() + got, out.size() - got};
      ssize_t n = ::preadv2(fd.get(), &iov, 1, static_cast<off_t>(offset + got), cached_only ? RWF_NOWAIT : 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (cached_only && (errno == EAGAIN || errno == EOPNOTSUPP)) return {kWouldBlock, {}};
        return {errno_code(), {}};
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    ec = check_unchanged(fd.get(), opened, AT_FDCWD, path.c_str());
    if (!ec) return {std::error_code(), std::move(out)};
    if (ec != std::errc::resource_unavailable_try_again || attempt + 1 >= kReadAttempts) return {ec, {}};
  }
}

}  // namespace mailhop::spool::detail
