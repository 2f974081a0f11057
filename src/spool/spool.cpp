// The spool's operations: receiving a message into tmp/, committing, updating and removing
// through the group committer, and reading back. Layout and format: docs/spool.md; the commit
// protocol: committer.hpp; the start-up scan: recovery.cpp.
//
// Every blocking call runs on the spool's pool or committer thread; the coroutines that await
// them resume on their own executor (util::Completion, util::run_on: mailhop/util/run_on.hpp).
#include "mailhop/spool/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "mailhop/util/metrics.hpp"
#include "spool_impl.hpp"

namespace mailhop::spool {

namespace asio = boost::asio;
using detail::CommitRequest;
using detail::errno_code;
using detail::Fd;
using detail::remove_file;
using util::run_on;

namespace {

// A message being received: its content goes to tmp/ID.msg, created on the first append.
class IncomingFile final : public Incoming {
 public:
  IncomingFile(const detail::Layout& layout, asio::thread_pool& pool, detail::SpareFiles& spare, QueueId id)
      : layout_(layout), pool_(pool), spare_(spare), id_(std::move(id)) {}
  ~IncomingFile() override {
    if (finished_ || !created_) return;
    // Dropped without commit: recycle the temporary, off the caller's thread.
    // After a failed write (a full disk), unlink: the space is what is missing.
    asio::post(pool_, [fd = std::make_shared<Fd>(std::move(fd_)), path = layout_.content_tmp(id_), &spare = spare_,
                       failed = static_cast<bool>(error_)] {
      fd->reset();
      if (failed || spare.release(path)) remove_file(path);
    });
  }

  const QueueId& id() const override { return id_; }
  std::uint64_t size() const override { return size_; }

  // On a pool thread.
  std::error_code append(std::string_view chunk) {
    if (finished_) return std::make_error_code(std::errc::invalid_argument);
    if (error_) return error_;
    if (auto ec = create()) return error_ = ec;
    if (auto ec = detail::write_all(fd_.get(), chunk)) return error_ = ec;
    size_ += chunk.size();
    return {};
  }

  // On a pool thread: content to msg/ID (no flush yet), the envelope to its temporary.
  // On failure nothing of the message is left.
  std::error_code prepare(std::string_view envelope_text, const std::filesystem::path& envelope_tmp) {
    if (finished_) return std::make_error_code(std::errc::invalid_argument);
    auto ec = error_;
    if (!ec) ec = create();
    // A recycled file may be longer than this message: cut it, so no old byte follows.
    if (!ec) ec = recycled_ ? detail::finish_file(fd_, size_) : fd_.reset();
    if (!ec) ec = detail::rename_file(layout_.content_tmp(id_), layout_.content(id_));
    if (!ec) ec = detail::write_recycled_file(spare_, envelope_tmp, envelope_text);
    if (ec) {
      fd_.reset();
      remove_file(envelope_tmp);
      remove_file(layout_.content_tmp(id_));
      remove_file(layout_.content(id_));
    }
    finished_ = true;  // from here on the committer owns the files
    return ec;
  }

 private:
  std::error_code create() {
    if (created_) return {};
    std::error_code ec;
    fd_ = spare_.acquire(layout_.content_tmp(id_), ec, &recycled_);
    if (ec) return ec;
    created_ = true;
    return {};
  }

  const detail::Layout& layout_;
  asio::thread_pool& pool_;
  detail::SpareFiles& spare_;
  QueueId id_;
  std::uint64_t size_ = 0;
  Fd fd_;
  bool created_ = false;
  bool recycled_ = false;  // the file is a spare one: cut to size_ before closing
  bool finished_ = false;  // committed, or handed to the committer, or discarded
  std::error_code error_;  // the first failed append
};

// Awaits the committer's verdict on `request`.
auto submit(detail::Committer& committer, CommitRequest::Kind kind, const QueueId& id, std::filesystem::path tmp) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::error_code)>(
      [&committer, kind, id](auto handler, std::filesystem::path envelope_tmp) {
        committer.submit(CommitRequest{kind, id, std::move(envelope_tmp),
                                       util::Completion<std::error_code>(std::move(handler))});
      },
      asio::use_awaitable, std::move(tmp));
}

}  // namespace

void Spool::Impl::require_open() const {
  if (!committer) throw std::logic_error("spool: used before open()");
}

Spool::Spool(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Spool::~Spool() = default;

const std::filesystem::path& Spool::root() const { return impl_->options.root; }

void Spool::open() {
  if (impl_->committer) return;
  const auto& l = impl_->layout;
  std::error_code ec;
  std::filesystem::create_directories(l.root, ec);
  if (ec) throw std::system_error(ec, "cannot create spool directory " + l.root.string());
  // Mail is private: the queue directories are the owner's alone.
  for (const auto& dir : {l.tmp, l.msg, l.env, l.corrupt, l.spare})
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::system_error(errno_code(), "cannot create spool directory " + dir.string());
  impl_->root_fd = detail::open_directory(l.root, ec);
  if (ec) throw std::system_error(ec, "cannot open spool directory " + l.root.string());
  // The new directories themselves must survive a crash before anything is committed in them.
  if (impl_->options.durable && ::fsync(impl_->root_fd.get()) != 0)
    throw std::system_error(errno_code(), "cannot fsync spool directory " + l.root.string());
  impl_->spare.load();
  impl_->committer = std::make_unique<detail::Committer>(l, impl_->root_fd.get(), impl_->options.durable, impl_->spare);
}

std::unique_ptr<Incoming> Spool::begin() {
  impl_->require_open();
  return std::make_unique<IncomingFile>(impl_->layout, impl_->pool, impl_->spare, QueueId::generate());
}

asio::awaitable<std::error_code> Spool::append(Incoming& message, std::string chunk) {
  auto& in = static_cast<IncomingFile&>(message);
  // The work is a named local, not a temporary in the co_await expression: g++ 12 destroys
  // such temporaries twice (a double free of the captured string).
  auto work = [&in, chunk = std::move(chunk)] { return in.append(chunk); };
  auto ec = co_await run_on<std::error_code>(impl_->pool, std::move(work));
  co_return ec;
}

asio::awaitable<std::error_code> Spool::commit(Incoming& message, Envelope& envelope) {
  std::string no_tail;
  auto ec = co_await commit(message, std::move(no_tail), envelope);
  co_return ec;
}

asio::awaitable<std::error_code> Spool::commit(Incoming& message, std::string tail, Envelope& envelope) {
  impl_->require_open();
  const auto started = std::chrono::steady_clock::now();  // for mailhop_spool_commit_duration_seconds
  auto& in = static_cast<IncomingFile&>(message);
  envelope.id = in.id();
  envelope.size = in.size() + tail.size();
  auto tmp = impl_->layout.envelope_tmp(in.id(), ++impl_->tmp_sequence);
  auto work = [&in, &tmp, tail = std::move(tail), text = serialize(envelope)] {
    if (!tail.empty()) in.append(tail);  // a failure is kept, and prepare() returns it after cleaning up
    return in.prepare(text, tmp);
  };
  auto ec = co_await run_on<std::error_code>(impl_->pool, std::move(work));
  if (ec) co_return ec;
  ec = co_await submit(*impl_->committer, CommitRequest::Kind::commit, envelope.id, tmp);
  if (!ec) util::metrics::registry().spool_commit_seconds.observe(std::chrono::steady_clock::now() - started);
  co_return ec;
}

asio::awaitable<std::error_code> Spool::update(const Envelope& envelope) {
  impl_->require_open();
  auto tmp = impl_->layout.envelope_tmp(envelope.id, ++impl_->tmp_sequence);
  auto work = [&tmp, &spare = impl_->spare, text = serialize(envelope)] {
    auto ec = detail::write_recycled_file(spare, tmp, text);
    if (ec) remove_file(tmp);
    return ec;
  };
  auto ec = co_await run_on<std::error_code>(impl_->pool, std::move(work));
  if (ec) co_return ec;
  ec = co_await submit(*impl_->committer, CommitRequest::Kind::update, envelope.id, tmp);
  co_return ec;
}

asio::awaitable<std::error_code> Spool::remove(const QueueId& id) {
  impl_->require_open();
  auto ec = co_await submit(*impl_->committer, CommitRequest::Kind::remove, id, {});
  co_return ec;
}

asio::awaitable<std::error_code> Spool::store(Envelope& envelope, std::string content) {
  auto message = begin();
  auto ec = co_await commit(*message, std::move(content), envelope);
  co_return ec;
}

asio::awaitable<std::pair<std::error_code, std::string>> Spool::read_content(const QueueId& id, std::uint64_t offset,
                                                                            std::size_t max) {
  using Result = std::pair<std::error_code, std::string>;
  auto path = impl_->layout.content(id);
  // A message delivered soon after it arrived is still in memory: read it right here, with no
  // hand-off to a spool thread and back (two thread switches, and a wait behind the pool's
  // writes). Only what would wait for the disk goes to the pool.
  Result fast = detail::read_range(path, offset, max, /*cached_only=*/true);
  if (fast.first != std::errc::operation_would_block) co_return fast;
  auto work = [path = std::move(path), offset, max] { return detail::read_range(path, offset, max, false); };
  auto result = co_await run_on<Result>(impl_->pool, std::move(work));
  co_return result;
}

std::optional<Envelope> Spool::load(const QueueId& id, std::string* error) const {
  std::error_code ec;
  auto text = detail::read_file(impl_->layout.envelope(id), ec);
  if (!text) {
    if (error) *error = ec.message();
    return std::nullopt;
  }
  auto parsed = parse_envelope(*text);
  if (parsed.envelope && parsed.envelope->id != id) {
    parsed.envelope.reset();
    parsed.error = "envelope names another queue ID";
  }
  if (!parsed.envelope && error) *error = parsed.error;
  return std::move(parsed.envelope);
}

std::vector<Envelope> Spool::list() const {
  std::vector<Envelope> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(impl_->layout.env, ec), end; !ec && it != end; it.increment(ec)) {
    auto id = QueueId::parse(it->path().filename().string());
    if (!id) continue;
    if (auto e = load(*id)) out.push_back(std::move(*e));
  }
  std::sort(out.begin(), out.end(), [](const Envelope& a, const Envelope& b) { return a.id < b.id; });
  return out;
}

bool Spool::contains(const QueueId& id) const { return ::access(impl_->layout.envelope(id).c_str(), F_OK) == 0; }

std::optional<std::string> Spool::read_content_sync(const QueueId& id) const {
  std::error_code ec;
  return detail::read_file(impl_->layout.content(id), ec);
}

void Spool::join() { impl_->join(); }

SpoolStats Spool::stats() const {
  SpoolStats s;
  if (!impl_->committer) return s;
  const auto& c = impl_->committer->stats();
  s.commits = c.commits;
  s.updates = c.updates;
  s.removes = c.removes;
  s.failures = c.failures;
  s.batches = c.batches;
  s.flushes = c.flushes;
  auto spare = impl_->spare.counts();
  s.files_recycled = spare.reused;
  s.files_created = spare.created;
  return s;
}

}  // namespace mailhop::spool
