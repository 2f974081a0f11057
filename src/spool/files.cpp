// POSIX wrappers for the spool (see files.hpp): errno as std::error_code, EINTR retried.
#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

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
  for (int attempt = 0;; ++attempt) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct ::stat opened {};
    if (!fd || ::fstat(fd.get(), &opened) != 0) {
      ec = errno_code();
      return std::nullopt;
    }
    std::string out;
    if (opened.st_size > 0 && opened.st_size < (1 << 26)) out.reserve(static_cast<std::size_t>(opened.st_size));
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        ec = errno_code();
        return std::nullopt;
      }
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    ec = check_unchanged(fd.get(), opened, AT_FDCWD, path.c_str());
    if (!ec) return out;
    if (ec != std::errc::resource_unavailable_try_again || attempt + 1 >= kReadAttempts) return std::nullopt;
  }
}

}  // namespace mailhop::spool::detail
