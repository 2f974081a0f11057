// The start-up scan (Spool::recover): what a crash or a damaged disk left in the spool is
// cleaned up or set aside, and the queue is rebuilt from what is intact.
//
//   tmp/*          leftovers of stores and updates that never committed: removed.
//   env/ID         parsed; moved to corrupt/ when it cannot be parsed, names another ID, or its
//                  content is missing or has another size than the envelope says. The content
//                  goes along, so nothing is deleted on suspicion.
//   env/other      a file that is not named by a queue ID: moved to corrupt/.
//   msg/ID         without an envelope: an uncommitted leftover (a crash before the commit point,
//                  or during a removal): removed.
//
// SECURITY: every file here may be damaged; a bad file is logged and set aside, never thrown
// about. Runs before the daemon accepts mail, so nothing else writes the spool meanwhile.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <set>
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
};

}  // namespace

RecoveryReport Spool::recover() {
  open();
  const auto& l = impl_->layout;
  RecoveryReport report;
  std::error_code ec;

  // Leftovers of commits that never reached their commit point.
  for (fs::directory_iterator it(l.tmp, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rm;
    if (fs::remove_all(it->path(), rm) > 0 && !rm) ++report.temporaries_removed;
    else if (rm) spdlog::warn("spool: cannot remove temporary {}: {}", it->path().string(), rm.message());
  }
  if (ec) spdlog::warn("spool: cannot scan {}: {}", l.tmp.string(), ec.message());

  auto quarantine = [&](const fs::path& env_file, const std::string& name, const std::string& why) {
    std::error_code qe;
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

  // The envelopes: each commit point reached.
  std::vector<fs::path> envelopes;
  for (fs::directory_iterator it(l.env, ec), end; !ec && it != end; it.increment(ec)) envelopes.push_back(it->path());
  if (ec) spdlog::warn("spool: cannot scan {}: {}", l.env.string(), ec.message());

  // Whether an envelope can be trusted: parsed, named by its own ID, its content complete.
  auto check = [this, &l](const fs::path& path) {
    Verdict v;
    std::string name = path.filename().string();
    auto id = QueueId::parse(name);
    if (!id) {
      v.why = "file name is not a queue ID";
      return v;
    }
    auto envelope = load(*id, &v.why);
    if (!envelope) return v;
    struct stat st {};
    if (::stat(l.content(*id).c_str(), &st) != 0) {
      v.why = "content " + l.content(*id).string() + " is missing";
    } else if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != envelope->size) {
      v.why = "content has " + std::to_string(st.st_size) + " bytes, the envelope says " + std::to_string(envelope->size);
    } else {
      v.envelope = std::move(envelope);
    }
    return v;
  };
  // Reading and checking the envelopes is most of the work with a long queue (100,000
  // messages after an outage): a few threads share it; the verdicts are applied in order.
  std::vector<Verdict> verdicts(envelopes.size());
  {
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i; (i = next.fetch_add(1)) < envelopes.size();) verdicts[i] = check(envelopes[i]);
    };
    unsigned threads = envelopes.size() < 1000 ? 1 : std::clamp(2 * std::thread::hardware_concurrency(), 2u, 8u);
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work);
    work();
    for (auto& t : helpers) t.join();
  }
  std::set<std::string, std::less<>> kept;
  for (std::size_t i = 0; i < envelopes.size(); ++i) {
    auto& v = verdicts[i];
    std::string name = envelopes[i].filename().string();
    if (!v.envelope) {
      quarantine(envelopes[i], name, v.why);
      continue;
    }
    kept.insert(name);
    report.queued.push_back(std::move(*v.envelope));
  }

  // Content without an envelope never reached its commit point.
  for (fs::directory_iterator it(l.msg, ec), end; !ec && it != end; it.increment(ec)) {
    if (kept.contains(it->path().filename().string())) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (rm) spdlog::warn("spool: cannot remove uncommitted content {}: {}", it->path().string(), rm.message());
    else {
      spdlog::info("spool: removed uncommitted content {}", it->path().string());
      ++report.temporaries_removed;
    }
  }
  if (ec) spdlog::warn("spool: cannot scan {}: {}", l.msg.string(), ec.message());

  // The moves out of env/ are made durable, so a quarantined file does not come back.
  if (impl_->options.durable && !report.quarantined.empty()) {
    detail::fsync_directory(l.env);
    detail::fsync_directory(l.corrupt);
  }

  std::sort(report.queued.begin(), report.queued.end(), [](const Envelope& a, const Envelope& b) { return a.id < b.id; });
  if (!report.queued.empty() || !report.quarantined.empty() || report.temporaries_removed)
    spdlog::info("spool: {} queued, {} quarantined, {} leftovers removed", report.queued.size(), report.quarantined.size(),
                 report.temporaries_removed);
  return report;
}

}  // namespace mailhop::spool
