// The in-memory schedule (see mailhop/delivery/scheduler.hpp).
#include "mailhop/delivery/scheduler.hpp"

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
  if (e.again) {
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

std::size_t Scheduler::queued() const { return impl_->entries.size(); }
std::size_t Scheduler::due() const { return impl_->due.size(); }

}  // namespace mailhop::delivery
