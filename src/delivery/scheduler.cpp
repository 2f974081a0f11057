// The in-memory schedule (see mailhop/delivery/scheduler.hpp).
#include "mailhop/delivery/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace mailhop::delivery {

namespace asio = boost::asio;

namespace {

enum class State { waiting, due, out };

struct Entry {
  spool::Envelope envelope;
  State state = State::waiting;
  bool again = false;  // added while out: due as soon as it comes back
  std::optional<bool> held_mark;  // hold/release asked while out
  bool remove_mark = false;       // delete asked while out
  std::unique_ptr<asio::steady_timer> timer;
};

}  // namespace

struct Scheduler::Impl : std::enable_shared_from_this<Impl> {
  asio::any_io_executor strand;
  std::map<spool::QueueId, Entry> entries;
  std::deque<spool::QueueId> due;
  asio::steady_timer wake;  // never expires: cancel_one() wakes one waiting worker
  bool stopped = false;

  explicit Impl(asio::any_io_executor s) : strand(s), wake(s, asio::steady_timer::time_point::max()) {}

  void make_due(const spool::QueueId& id, Entry& e) {
    if (e.timer) e.timer->cancel();
    e.timer.reset();
    e.state = State::due;
    due.push_back(id);
    wake.cancel_one();
  }

  void schedule(const spool::QueueId& id, Entry& e) {
    if (e.timer) e.timer->cancel();
    e.timer.reset();
    if (stopped) return;
    if (e.envelope.held) {
      e.state = State::waiting;  // released by being added again unheld
      return;
    }
    const auto wait = e.envelope.next_attempt - std::chrono::system_clock::now();
    if (wait <= std::chrono::system_clock::duration::zero()) {
      make_due(id, e);
      return;
    }
    e.state = State::waiting;
    e.timer = std::make_unique<asio::steady_timer>(strand);
    e.timer->expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(wait));
    asio::steady_timer* timer = e.timer.get();
    timer->async_wait([weak = weak_from_this(), id, timer](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      auto it = self->entries.find(id);
      // A timer replaced or cancelled since then is not this one.
      if (it == self->entries.end() || it->second.timer.get() != timer || it->second.state != State::waiting) return;
      self->make_due(id, it->second);
    });
  }
};

Scheduler::Scheduler(asio::any_io_executor strand) : impl_(std::make_shared<Impl>(strand)) {}

Scheduler::~Scheduler() {
  for (auto& [id, e] : impl_->entries)
    if (e.timer) e.timer->cancel();
  impl_->wake.cancel();
}

void Scheduler::add(spool::Envelope envelope) {
  auto& self = *impl_;
  const spool::QueueId id = envelope.id;
  auto [it, inserted] = self.entries.try_emplace(id);
  Entry& e = it->second;
  if (!inserted && e.state == State::out) {
    e.again = !envelope.held;
    if (envelope.held) e.held_mark = true;  // the worker has the envelope as it was: keep it held
    return;
  }
  if (!inserted && e.state == State::due) {
    e.envelope = std::move(envelope);
    if (e.envelope.held) e.state = State::waiting;  // its place in the due list is skipped
    return;
  }
  e.envelope = std::move(envelope);
  if (!inserted && !e.envelope.held) e.envelope.next_attempt = std::chrono::system_clock::now();  // enqueued again: now
  self.schedule(id, e);
}

void Scheduler::done(const spool::QueueId& id, std::optional<spool::Envelope> envelope) {
  auto& self = *impl_;
  auto it = self.entries.find(id);
  if (it == self.entries.end()) return;
  if (!envelope) {
    self.entries.erase(it);
    return;
  }
  Entry& e = it->second;
  e.envelope = std::move(*envelope);
  if (e.held_mark) e.envelope.held = *e.held_mark;  // normally applied by the worker already
  e.held_mark.reset();
  e.remove_mark = false;
  if (e.again && !e.envelope.held) {
    e.again = false;
    e.envelope.next_attempt = std::chrono::system_clock::now();
  }
  self.schedule(id, e);
}

asio::awaitable<std::optional<spool::Envelope>> Scheduler::next() {
  auto self = impl_;  // the schedule outlives a worker suspended here
  for (;;) {
    if (self->stopped) co_return std::nullopt;
    while (!self->due.empty()) {
      spool::QueueId id = self->due.front();
      self->due.pop_front();
      auto it = self->entries.find(id);
      if (it == self->entries.end() || it->second.state != State::due) continue;  // stale
      it->second.state = State::out;
      co_return it->second.envelope;
    }
    co_await self->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Scheduler::stop() {
  auto& self = *impl_;
  self.stopped = true;
  for (auto& [id, e] : self.entries)
    if (e.timer) e.timer->cancel();
  self.wake.cancel();
}

Scheduler::Where Scheduler::where(const spool::QueueId& id) const {
  auto it = impl_->entries.find(id);
  if (it == impl_->entries.end()) return Where::absent;
  switch (it->second.state) {
    case State::waiting: return Where::waiting;
    case State::due: return Where::due;
    case State::out: return Where::out;
  }
  return Where::absent;
}

const spool::Envelope* Scheduler::find(const spool::QueueId& id) const {
  auto it = impl_->entries.find(id);
  return it == impl_->entries.end() ? nullptr : &it->second.envelope;
}

const spool::Envelope* Scheduler::set_held(const spool::QueueId& id, bool held) {
  auto& self = *impl_;
  auto it = self.entries.find(id);
  if (it == self.entries.end()) return nullptr;
  Entry& e = it->second;
  if (e.state == State::out) {
    e.held_mark = held;
    if (held) e.again = false;
    return &e.envelope;
  }
  if (e.envelope.held == held) return &e.envelope;
  e.envelope.held = held;
  if (held) {
    if (e.timer) e.timer->cancel();
    e.timer.reset();
    e.state = State::waiting;  // a place in the due list is skipped
  } else {
    e.envelope.next_attempt = std::chrono::system_clock::now();  // released: deliver now
    self.schedule(id, e);
  }
  return &e.envelope;
}

bool Scheduler::retry(const spool::QueueId& id) {
  auto& self = *impl_;
  auto it = self.entries.find(id);
  if (it == self.entries.end()) return false;
  Entry& e = it->second;
  if (e.state == State::out) {
    if (e.held_mark.value_or(e.envelope.held)) return false;
    e.again = true;
    return true;
  }
  if (e.envelope.held) return false;
  if (e.state == State::waiting) {
    e.envelope.next_attempt = std::chrono::system_clock::now();
    self.make_due(id, e);
  }
  return true;
}

std::size_t Scheduler::flush() {
  auto& self = *impl_;
  std::size_t n = 0;
  const auto now = std::chrono::system_clock::now();
  for (auto& [id, e] : self.entries) {
    if (e.state != State::waiting || e.envelope.held) continue;
    e.envelope.next_attempt = now;
    self.make_due(id, e);
    ++n;
  }
  return n;
}

bool Scheduler::forget(const spool::QueueId& id) {
  auto& self = *impl_;
  auto it = self.entries.find(id);
  if (it == self.entries.end()) return false;
  if (it->second.state == State::out) {
    it->second.remove_mark = true;
    it->second.again = false;
    return false;
  }
  if (it->second.timer) it->second.timer->cancel();
  self.entries.erase(it);  // a place in the due list is skipped as stale
  return true;
}

Scheduler::Marks Scheduler::take_marks(const spool::QueueId& id) {
  auto it = impl_->entries.find(id);
  if (it == impl_->entries.end()) return {};
  Marks m{it->second.held_mark, it->second.remove_mark};
  return m;
}

std::optional<util::SystemTime> Scheduler::oldest_arrival() const {
  if (impl_->entries.empty()) return std::nullopt;
  util::SystemTime oldest = impl_->entries.begin()->second.envelope.arrival;
  for (const auto& [id, e] : impl_->entries) oldest = std::min(oldest, e.envelope.arrival);
  return oldest;
}

std::size_t Scheduler::queued() const { return impl_->entries.size(); }
std::size_t Scheduler::due() const { return impl_->due.size(); }

}  // namespace mailhop::delivery
