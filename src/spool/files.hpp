// The spool's file system primitives: the directory layout, and thin POSIX wrappers that report
// errno as a std::error_code. Internal to the spool module.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <sys/stat.h>

#include "mailhop/spool/queue_id.hpp"

namespace mailhop::spool::detail {

// root/tmp      content being received, envelope temporaries (removed by recovery)
// root/msg/ID   committed content, written once
// root/env/ID   committed envelopes; present = the message is queued
// root/corrupt  quarantine
// root/spare    recycled files of finished messages (spare_files.hpp)
struct Layout {
  std::filesystem::path root, tmp, msg, env, corrupt, spare;

  explicit Layout(std::filesystem::path r)
      : root(r), tmp(r / "tmp"), msg(r / "msg"), env(r / "env"), corrupt(r / "corrupt"), spare(r / "spare") {}

  std::filesystem::path content(const QueueId& id) const { return msg / id.str(); }
  std::filesystem::path envelope(const QueueId& id) const { return env / id.str(); }
  std::filesystem::path content_tmp(const QueueId& id) const { return tmp / (id.str() + ".msg"); }
  // Two updates of one message may be in flight at once, hence the sequence number.
  std::filesystem::path envelope_tmp(const QueueId& id, unsigned long seq) const {
    return tmp / (id.str() + ".env." + std::to_string(seq));
  }
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  std::error_code reset();  // closes; close() errors count (NFS reports write errors there)

 private:
  int fd_ = -1;
};

std::error_code errno_code();  // the current errno
std::error_code write_all(int fd, std::string_view data);
// Creates `path` (it must not exist), writes `data`, closes. No flush: the committer flushes.
std::error_code write_new_file(const std::filesystem::path& path, std::string_view data);
Fd open_directory(const std::filesystem::path& dir, std::error_code& ec);
std::error_code fsync_directory(const std::filesystem::path& dir);
std::error_code rename_file(const std::filesystem::path& from, const std::filesystem::path& to);
// Swaps two existing names atomically (renameat2 RENAME_EXCHANGE). ENOENT when either is missing;
// EINVAL or ENOSYS when the file system or kernel cannot (the caller falls back to rename).
std::error_code exchange_files(const std::filesystem::path& a, const std::filesystem::path& b);
// unlink() that reports ENOENT as success when `missing_ok`.
std::error_code remove_file(const std::filesystem::path& path, bool missing_ok = true);
// The whole file; nullopt with `ec` set when it cannot be read. Safe against recycling (below):
// a file replaced or moved away during the read is read again from its name.
std::optional<std::string> read_file(const std::filesystem::path& path, std::error_code& ec);

// Spool files are recycled (spare_files.hpp): a file a reader has open may be moved to spare/
// and overwritten with another message's bytes while it reads. Called after the read: no error
// when `path` (relative to `dir_fd`, or AT_FDCWD) still names the file open as `fd` and it is
// unchanged since `opened` (its fstat right after open); ENOENT when the name is gone;
// EAGAIN when the name now holds another file or the file changed: read again.
std::error_code check_unchanged(int fd, const struct ::stat& opened, int dir_fd, const char* path);
// How often a reader tries again on EAGAIN before it reports the error.
inline constexpr int kReadAttempts = 16;

// Up to `max` bytes of `path` from `offset` (an empty string at the end), safe against
// recycling (check_unchanged() after the read; read_file() is this from 0, unbounded). With `cached_only` it never waits for the disk, so it may run on a
// network thread: the name must resolve from the dentry cache (openat2 RESOLVE_CACHED, Linux
// 5.12) and the bytes must be in the page cache (preadv2 RWF_NOWAIT); otherwise it reads nothing
// and says std::errc::operation_would_block, and the caller reads on a spool thread instead.
std::pair<std::error_code, std::string> read_range(const std::filesystem::path& path, std::uint64_t offset,
                                                   std::size_t max, bool cached_only);

}  // namespace mailhop::spool::detail
