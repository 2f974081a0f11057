// The pool of recycled spool files (see spare_files.hpp for why and the rules).
#include "spare_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>

#include <spdlog/spdlog.h>

namespace mailhop::spool::detail {

namespace {

// A name made by this pool: decimal digits only, no leading zero.
std::optional<std::uint64_t> parse_name(std::string_view s) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (err != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

}  // namespace

SpareFiles::SpareFiles(std::filesystem::path dir, std::size_t cap, bool durable)
    : dir_(std::move(dir)), cap_(cap), durable_(durable) {}

void SpareFiles::load() {
  std::lock_guard lock(mutex_);
  ready_.clear();
  waiting_.clear();
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    spdlog::warn("spool: cannot scan {}: {}", dir_.string(), errno_code().message());
    return;
  }
  std::vector<std::string> strays;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    auto n = parse_name(name);
    // Only plain files are recycled; anything else (a directory someone made) is left alone.
    bool regular = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      regular = ::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    }
    if (!regular) continue;
    if (n && ready_.size() < cap_) {
      ready_.push_back(*n);
      next_name_ = std::max(next_name_, *n + 1);
    } else {
      strays.emplace_back(name);
    }
  }
  ::closedir(d);
  for (const auto& s : strays) ::unlink((dir_ / s).c_str());
}

Fd SpareFiles::acquire(const std::filesystem::path& target, std::error_code& ec, bool* recycled) {
  for (;;) {
    std::uint64_t n;
    {
      std::lock_guard lock(mutex_);
      if (ready_.empty()) break;
      n = ready_.back();
      ready_.pop_back();
    }
    if (::rename(name_of(n).c_str(), target.c_str()) != 0) {
      // Gone (removed by hand): try the next one; anything else: create instead.
      if (errno == ENOENT) continue;
      break;
    }
    // O_NOFOLLOW: the file came out of our own directory, but never follow a link planted there.
    Fd fd(::open(target.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd) {
      std::lock_guard lock(mutex_);
      ++reused_;
      ec.clear();
      if (recycled) *recycled = true;
      return fd;
    }
    ::unlink(target.c_str());  // not usable (not a regular file?): a fresh one instead
    break;
  }
  Fd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    ec = errno_code();
    return fd;
  }
  {
    std::lock_guard lock(mutex_);
    ++created_;
  }
  ec.clear();
  if (recycled) *recycled = false;
  return fd;
}

std::error_code SpareFiles::release(const std::filesystem::path& path, bool missing_ok) {
  std::uint64_t n = 0;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT && missing_ok ? std::error_code() : errno_code();
  bool keep = S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) <= kMaxKeptBytes;
  {
    std::lock_guard lock(mutex_);
    keep = keep && ready_.size() + waiting_.size() + in_flight_ < cap_;
    if (keep) {
      n = next_name_++;
      ++in_flight_;
    }
  }
  if (!keep) {
    if (::unlink(path.c_str()) != 0 && !(missing_ok && errno == ENOENT)) return errno_code();
    std::lock_guard lock(mutex_);
    ++unlinked_;
    return {};
  }
  std::error_code ec;
  if (::rename(path.c_str(), name_of(n).c_str()) != 0) {
    // Either `path` is gone (removed meanwhile) or spare/ is unusable (removed by hand?): then
    // the file still has to go.
    ec = errno_code();
    if (::lstat(path.c_str(), &st) == 0) ec = ::unlink(path.c_str()) == 0 ? std::error_code() : errno_code();
    if (!ec || (missing_ok && ec.value() == ENOENT)) {
      std::lock_guard lock(mutex_);
      --in_flight_;
      ++unlinked_;
      return {};
    }
  }
  std::lock_guard lock(mutex_);
  --in_flight_;
  if (ec) return ec;
  if (durable_) waiting_.push_back({n, generation_});
  else ready_.push_back(n);
  return {};
}

std::uint64_t SpareFiles::seal() {
  std::lock_guard lock(mutex_);
  return generation_++;
}

void SpareFiles::mark_flushed(std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  auto flushed = [generation](const Waiting& w) { return w.generation <= generation; };
  for (const auto& w : waiting_)
    if (flushed(w)) ready_.push_back(w.name);
  std::erase_if(waiting_, flushed);
}

SpareFiles::Counts SpareFiles::counts() const {
  std::lock_guard lock(mutex_);
  return {ready_.size(), waiting_.size(), reused_, created_, unlinked_};
}

std::error_code finish_file(Fd& fd, std::uint64_t length) {
  std::error_code ec;
  while (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
    if (errno == EINTR) continue;
    ec = errno_code();
    break;
  }
  auto closed = fd.reset();
  return ec ? ec : closed;
}

std::error_code write_recycled_file(SpareFiles& spare, const std::filesystem::path& path, std::string_view data) {
  std::error_code ec;
  bool recycled = false;
  Fd fd = spare.acquire(path, ec, &recycled);
  if (ec) return ec;
  if (auto w = write_all(fd.get(), data)) return w;
  if (!recycled) return fd.reset();  // a new file has exactly what was written
  return finish_file(fd, data.size());
}

}  // namespace mailhop::spool::detail
