// The group-commit thread (see committer.hpp for the protocol and why each flush is where it is).
#include "committer.hpp"

#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

namespace mailhop::spool::detail {

Committer::Committer(const Layout& layout, int root_fd, bool durable, SpareFiles& spare)
    : layout_(layout), root_fd_(root_fd), spare_(spare), durable_(durable), thread_([this] { run(); }) {}

Committer::~Committer() { join(); }

void Committer::join() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Committer::submit(CommitRequest request) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
  }
  wake_.notify_one();
}

void Committer::run() {
  std::vector<CommitRequest> ready;  // data on stable storage, commit points still to make
  std::vector<CommitRequest> fresh;  // arrived while the last round ran
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (ready.empty()) wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && ready.empty()) return;  // stopping, and nothing left to do
      fresh.swap(queue_);
    }
    round(ready, fresh);
    ready.swap(fresh);  // what round() kept of `fresh` is flushed now: its commit points next
    fresh.clear();
  }
}

// env/ID becomes the new envelope; the old one goes to spare/.
std::error_code Committer::install_update(const CommitRequest& r) {
  auto target = layout_.envelope(r.id);
  if (can_exchange_) {
    auto ec = exchange_files(r.envelope_tmp, target);
    if (!ec) {
      spare_.release(r.envelope_tmp);  // now the old envelope; a failure only costs a file
      return {};
    }
    if (ec.value() != EINVAL && ec.value() != ENOSYS) return ec;  // ENOENT: removed meanwhile
    can_exchange_ = false;
    spdlog::info("spool: {} cannot exchange files (renameat2): updates replace envelopes with rename",
                 layout_.env.string());
  }
  // Never resurrect a message that was removed meanwhile.
  if (::access(target.c_str(), F_OK) != 0) return errno_code();
  return rename_file(r.envelope_tmp, target);
}

void Committer::round(std::vector<CommitRequest>& ready, std::vector<CommitRequest>& fresh) {
  using Kind = CommitRequest::Kind;
  ++stats_.batches;

  auto finish = [this](CommitRequest& r, std::error_code result) {
    if (result) {
      ++stats_.failures;
    } else {
      switch (r.kind) {
        case Kind::commit: ++stats_.commits; break;
        case Kind::update: ++stats_.updates; break;
        case Kind::remove: ++stats_.removes; break;
      }
    }
    r.completion.complete(result);
  };
  // A message that could not be made durable leaves nothing behind in the queue.
  auto discard = [this](const CommitRequest& r) {
    if (!r.envelope_tmp.empty()) remove_file(r.envelope_tmp);
    if (r.kind == Kind::commit) remove_file(layout_.content(r.id));
  };
  auto remove_now = [this](const CommitRequest& r) {
    // The envelope first: its move out of env/ is the commit point; then the content.
    auto ec = spare_.release(layout_.envelope(r.id), /*missing_ok=*/false);  // ENOENT: not queued
    if (!ec) spare_.release(layout_.content(r.id));
    return ec;
  };

  // 1. The commit points of the requests whose data the last round's flush made durable, in
  //    the order they arrived (committer.hpp, step 2).
  std::vector<std::error_code> result(ready.size());
  bool made_entries = false;
  for (std::size_t i = 0; i < ready.size(); ++i) {
    auto& r = ready[i];
    switch (r.kind) {
      case Kind::commit: result[i] = rename_file(r.envelope_tmp, layout_.envelope(r.id)); break;
      case Kind::update: result[i] = install_update(r); break;
      case Kind::remove: result[i] = remove_now(r); break;
    }
    if (!result[i]) made_entries |= r.kind != Kind::remove;
    else if (r.kind == Kind::update && result[i].value() == ENOENT) spare_.release(r.envelope_tmp);  // removed meanwhile
    else if (r.kind != Kind::remove) discard(r);
  }

  // 2. New removals: done and completed at once, not flushed (committer.hpp). One that follows
  //    an update of its message still waiting here keeps its place behind it (next round).
  std::vector<CommitRequest> kept;
  kept.reserve(fresh.size());
  for (auto& r : fresh) {
    bool after_update = false;
    for (const auto& k : kept) after_update |= k.kind == Kind::update && k.id == r.id;
    if (r.kind != Kind::remove || after_update) {
      kept.push_back(std::move(r));
      continue;
    }
    auto ec = remove_now(r);
    finish(r, ec);
  }
  fresh.swap(kept);

  // 3. One flush for both: the directory entries made in step 1 and the data of the new
  //    commits and updates. Only entries to flush: fsync(env/) (the journal, not the data).
  std::error_code flush_error;
  bool new_data = false;
  for (const auto& r : fresh) new_data |= r.kind != Kind::remove;
  if (durable_ && (new_data || made_entries)) {
    auto generation = spare_.seal();  // files released so far: their renames are in this flush
    ++stats_.flushes;
    if (new_data) {
      if (::syncfs(root_fd_) != 0) flush_error = errno_code();
    } else {
      flush_error = fsync_directory(layout_.env);
    }
    if (!flush_error) spare_.mark_flushed(generation);
  }
  if (flush_error) {
    spdlog::error("spool: flushing {} requests failed: {}", ready.size() + fresh.size(), flush_error.message());
    for (std::size_t i = 0; i < ready.size(); ++i) {
      if (result[i] || ready[i].kind == Kind::remove) continue;
      result[i] = flush_error;
      // A commit that may not survive a crash is withdrawn; the caller answers 4xx. An update
      // stays as done: whether it survives a crash is unknown.
      if (ready[i].kind == Kind::commit) {
        remove_file(layout_.envelope(ready[i].id));
        remove_file(layout_.content(ready[i].id));
      }
    }
    for (auto& r : fresh) {
      if (r.kind != Kind::remove) discard(r);
      finish(r, flush_error);
    }
    fresh.clear();
  }

  // 4. Wake the callers whose entries are now on stable storage, each on its own executor.
  for (std::size_t i = 0; i < ready.size(); ++i) finish(ready[i], result[i]);
}

}  // namespace mailhop::spool::detail
