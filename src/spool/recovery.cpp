// The start-up scan (Spool::recover, or its two phases recover_temporaries and scan_queue):
// what a crash or a damaged disk left in the spool is cleaned up or set aside, and the queue is
// rebuilt from what is intact.
//
// Phase 1, recover_temporaries (directory listings only, before any new message):
//   tmp/*          leftovers of stores and updates that never committed: recycled into spare/.
//   msg/ID         without an envelope: an uncommitted leftover (a crash before the commit point,
//                  or during a removal): recycled into spare/.
//   env/*          the names are kept for phase 2: exactly the messages queued before this start.
// Phase 2, scan_queue (reads every envelope, on several threads; new mail may flow meanwhile):
//   env/ID         parsed; moved to corrupt/ when it cannot be parsed, names another ID, or its
//                  content is missing or has another size than the envelope says. The content
//                  goes along, so nothing is deleted on suspicion.
//   env/other      a file that is not named by a queue ID: moved to corrupt/.
// spare/ is only counted and trimmed to its cap (SpareFiles::load, from open()).
//
// SECURITY: every file here may be damaged; a bad file is logged and set aside, never thrown
// about.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "spool_impl.hpp"

namespace mailhop::spool {

namespace fs = std::filesystem;

namespace {

// corrupt/NAME.SUFFIX, or NAME.SUFFIX.N when that is taken (a file quarantined before).
fs::path quarantine_name(const fs::path& corrupt, const std::string& name, const std::string& suffix) {
  fs::path target = corrupt / (name + suffix);
  std::error_code ec;
  for (unsigned n = 1; fs::exists(fs::symlink_status(target, ec)); ++n)
    target = corrupt / (name + suffix + "." + std::to_string(n));
  return target;
}

struct Verdict {
  std::optional<Envelope> envelope;  // set when it can be trusted
  std::string why;                   // else: why not
  bool gone = false;                 // removed meanwhile (delivered from an earlier batch): skip
};

// The names in `dir` (not . and ..), as the directory lists them; `ok` false when it cannot be read.
std::vector<std::string> list_names(const fs::path& dir, bool& ok) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  ok = d != nullptr;
  if (!d) {
    spdlog::warn("spool: cannot scan {}: {}", dir.string(), detail::errno_code().message());
    return names;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  return names;
}

// The whole file `name` in the directory `dir_fd`; nullopt with `error` set when unreadable.
// Delivery may update or remove an earlier batch's message meanwhile: a file recycled during the
// read is read again (files.hpp, check_unchanged); gone means not queued any more.
std::optional<std::string> read_at(int dir_fd, const std::string& name, std::string& error, bool& gone) {
  for (int attempt = 0;; ++attempt) {
    detail::Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct ::stat opened {};
    if (!fd || ::fstat(fd.get(), &opened) != 0) {
      gone = errno == ENOENT;
      error = detail::errno_code().message();
      return std::nullopt;
    }
    std::string out;
    if (opened.st_size > 0 && opened.st_size < (1 << 24)) out.reserve(static_cast<std::size_t>(opened.st_size) + 1);
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        error = detail::errno_code().message();
        return std::nullopt;
      }
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    auto ec = detail::check_unchanged(fd.get(), opened, dir_fd, name.c_str());
    if (!ec) return out;
    if (ec == std::errc::resource_unavailable_try_again && attempt + 1 < detail::kReadAttempts) continue;
    gone = ec == std::errc::no_such_file_or_directory;
    error = ec.message();
    return std::nullopt;
  }
}

}  // namespace

RecoveryReport Spool::recover_temporaries() {
  open();
  const auto& l = impl_->layout;
  RecoveryReport report;

  // Leftovers of commits that never reached their commit point: their files are recycled.
  bool ok = true;
  for (const auto& name : list_names(l.tmp, ok)) {
    auto path = l.tmp / name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    std::error_code ec;
    if (S_ISREG(st.st_mode)) ec = impl_->spare.release(path);
    else fs::remove_all(path, ec);  // not ours to recycle (a directory, a link)
    if (ec) spdlog::warn("spool: cannot remove temporary {}: {}", path.string(), ec.message());
    else ++report.temporaries_removed;
  }

  // The queue as it was before this start: phase 2 reads exactly these.
  auto envelopes = list_names(l.env, ok);
  std::sort(envelopes.begin(), envelopes.end());

  // Content without an envelope never reached its commit point (or its removal was cut short).
  for (const auto& name : list_names(l.msg, ok)) {
    if (std::binary_search(envelopes.begin(), envelopes.end(), name)) continue;
    auto path = l.msg / name;
    std::error_code ec;
    if (fs::is_regular_file(fs::symlink_status(path, ec))) ec = impl_->spare.release(path);
    else fs::remove_all(path, ec);
    if (ec) {
      spdlog::warn("spool: cannot remove uncommitted content {}: {}", path.string(), ec.message());
    } else {
      spdlog::info("spool: removed uncommitted content {}", path.string());
      ++report.temporaries_removed;
    }
  }

  impl_->old_envelopes = std::move(envelopes);
  impl_->temporaries_recovered = true;
  if (report.temporaries_removed) spdlog::info("spool: {} leftovers recycled", report.temporaries_removed);
  return report;
}

RecoveryReport Spool::scan_queue(const std::function<void(std::vector<Envelope>&)>& on_batch, std::size_t batch_size) {
  if (!impl_->temporaries_recovered) recover_temporaries();
  impl_->temporaries_recovered = false;
  const auto& l = impl_->layout;
  const std::vector<std::string> names = std::move(impl_->old_envelopes);
  impl_->old_envelopes.clear();
  RecoveryReport report;
  batch_size = std::max<std::size_t>(batch_size, 1);

  auto quarantine = [&](const std::string& name, const std::string& why) {
    std::error_code qe;
    auto env_file = l.env / name;
    auto target = quarantine_name(l.corrupt, name, ".env");
    fs::rename(env_file, target, qe);
    if (qe) {
      spdlog::error("spool: cannot move {} to {}: {}", env_file.string(), target.string(), qe.message());
      return;
    }
    std::string line = "env/" + name + ": " + why;
    if (auto id = QueueId::parse(name)) {
      auto content = l.content(*id);
      if (fs::exists(fs::symlink_status(content, qe))) {
        auto content_target = quarantine_name(l.corrupt, name, ".msg");
        fs::rename(content, content_target, qe);
        if (qe) spdlog::error("spool: cannot move {} to {}: {}", content.string(), content_target.string(), qe.message());
      }
    }
    spdlog::warn("spool: quarantined {} in {}: {}", env_file.string(), l.corrupt.string(), why);
    report.quarantined.push_back(std::move(line));
  };

  std::error_code ec;
  detail::Fd env_fd = detail::open_directory(l.env, ec);
  detail::Fd msg_fd = detail::open_directory(l.msg, ec);

  // Whether an envelope can be trusted: parsed, named by its own ID, its content complete.
  auto check = [&](const std::string& name) {
    Verdict v;
    auto id = QueueId::parse(name);
    if (!id) {
      v.why = "file name is not a queue ID";
      return v;
    }
    auto text = read_at(env_fd.get(), name, v.why, v.gone);
    if (!text) return v;
    auto parsed = parse_envelope(*text);
    if (!parsed.envelope) {
      v.why = std::move(parsed.error);
      return v;
    }
    if (parsed.envelope->id != *id) {
      v.why = "envelope names another queue ID";
      return v;
    }
    struct stat st {};
    if (::fstatat(msg_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      // Removed between the two looks (its envelope goes first): not a damaged message.
      v.gone = ::faccessat(env_fd.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
      v.why = "content " + l.content(*id).string() + " is missing";
    } else if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != parsed.envelope->size) {
      v.why = "content has " + std::to_string(st.st_size) + " bytes, the envelope says " +
              std::to_string(parsed.envelope->size);
    } else {
      v.envelope = std::move(parsed.envelope);
    }
    return v;
  };

  // Reading and checking the envelopes is most of the work with a long queue (100,000 messages
  // after an outage): a few threads read batches; this thread quarantines and hands them over
  // as each is done, so delivery starts after the first batch, not after the last.
  const std::size_t batches = (names.size() + batch_size - 1) / batch_size;
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::pair<std::size_t, std::vector<Verdict>>> done;
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t b; (b = next.fetch_add(1)) < batches;) {
      std::vector<Verdict> verdicts;
      const std::size_t end = std::min(names.size(), (b + 1) * batch_size);
      verdicts.reserve(end - b * batch_size);
      for (std::size_t i = b * batch_size; i < end; ++i) verdicts.push_back(check(names[i]));
      {
        std::lock_guard lock(mutex);
        done.emplace_back(b, std::move(verdicts));
      }
      ready.notify_one();
    }
  };
  unsigned threads = names.size() < 1000 ? 1 : std::clamp(2 * std::thread::hardware_concurrency(), 2u, 8u);
  std::vector<std::thread> readers;
  for (unsigned t = 0; t < threads; ++t) readers.emplace_back(work);
  for (std::size_t handed = 0; handed < batches; ++handed) {
    std::pair<std::size_t, std::vector<Verdict>> item;
    {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return !done.empty(); });
      item = std::move(done.front());
      done.pop_front();
    }
    std::vector<Envelope> batch;
    batch.reserve(item.second.size());
    for (std::size_t k = 0; k < item.second.size(); ++k) {
      auto& v = item.second[k];
      if (v.envelope) batch.push_back(std::move(*v.envelope));
      else if (!v.gone) quarantine(names[item.first * batch_size + k], v.why);
    }
    report.scanned += batch.size();
    if (!batch.empty()) on_batch(batch);
  }
  for (auto& t : readers) t.join();

  // The moves out of env/ are made durable, so a quarantined file does not come back.
  if (impl_->options.durable && !report.quarantined.empty()) {
    detail::fsync_directory(l.env);
    detail::fsync_directory(l.corrupt);
  }
  if (report.scanned || !report.quarantined.empty())
    spdlog::info("spool: {} queued, {} quarantined", report.scanned, report.quarantined.size());
  return report;
}

RecoveryReport Spool::recover() {
  auto report = recover_temporaries();
  auto scan = scan_queue([&](std::vector<Envelope>& batch) {
    std::move(batch.begin(), batch.end(), std::back_inserter(report.queued));
  });
  report.quarantined = std::move(scan.quarantined);
  report.scanned = scan.scanned;
  std::sort(report.queued.begin(), report.queued.end(), [](const Envelope& a, const Envelope& b) { return a.id < b.id; });
  return report;
}

}  // namespace mailhop::spool
