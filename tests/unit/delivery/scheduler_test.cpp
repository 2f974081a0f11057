// The schedule: due at once when enqueued, a deferred message wakes at its next attempt (by a
// timer, not a poll), a held one never comes out, one worker per message at a time.
#include <catch2/catch.hpp>

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "mailhop/delivery/scheduler.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

spool::Envelope envelope(std::chrono::system_clock::duration due_in, bool held = false) {
  spool::Envelope e;
  e.sender = "a@example.org";
  e.recipients.push_back({"b@example.net", spool::RecipientState::pending, ""});
  e.next_attempt = std::chrono::system_clock::now() + due_in;
  e.held = held;
  return e;
}

// Takes the next due message, with a deadline; nullopt when none came.
std::optional<spool::Envelope> take(asio::io_context& io, Scheduler& s, std::chrono::milliseconds deadline) {
  std::optional<spool::Envelope> got;
  bool done = false;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    got = co_await s.next();
    done = true;
  }, asio::detached);
  const auto until = std::chrono::steady_clock::now() + deadline;
  io.restart();  // it stops whenever it runs out of work
  while (!done && std::chrono::steady_clock::now() < until) io.run_one_for(10ms);
  if (!done) {
    s.stop();  // release the waiting coroutine
    io.restart();
    while (!done) io.run_one();
    return std::nullopt;
  }
  return got;
}

}  // namespace

TEST_CASE("scheduler: an enqueued message is due at once", "[scheduler]") {
  asio::io_context io;
  Scheduler s(io.get_executor());
  auto e = envelope(-1s);
  s.add(e);
  CHECK(s.due() == 1);
  auto got = take(io, s, 1000ms);
  REQUIRE(got);
  CHECK(got->id == e.id);
}

TEST_CASE("scheduler: a deferred message wakes at its next attempt", "[scheduler]") {
  asio::io_context io;
  Scheduler s(io.get_executor());
  auto e = envelope(300ms);
  const auto start = std::chrono::steady_clock::now();
  s.add(e);
  CHECK(s.due() == 0);
  auto got = take(io, s, 5000ms);
  REQUIRE(got);
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
}

TEST_CASE("scheduler: one worker per message; added again while out, it is due when back", "[scheduler]") {
  asio::io_context io;
  Scheduler s(io.get_executor());
  auto e = envelope(-1s);
  s.add(e);
  auto first = take(io, s, 1000ms);
  REQUIRE(first);
  s.add(e);  // e.g. enqueued again while a worker has it
  CHECK(s.due() == 0);
  auto back = *first;
  back.next_attempt = std::chrono::system_clock::now() + 1h;
  s.done(back.id, back);
  CHECK(s.due() == 1);  // "again" wins over the hour
  REQUIRE(take(io, s, 1000ms));
  s.done(back.id, std::nullopt);  // left the queue
  CHECK(s.queued() == 0);
}

TEST_CASE("scheduler: a held message is not handed out until added again unheld", "[scheduler]") {
  asio::io_context io;
  Scheduler s(io.get_executor());
  auto e = envelope(-1s, true);
  s.add(e);
  CHECK(s.due() == 0);
  CHECK(s.queued() == 1);
  io.run_for(50ms);
  CHECK(s.due() == 0);
  e.held = false;
  s.add(e);
  CHECK(s.due() == 1);
  e.held = true;  // held again before a worker took it
  s.add(e);
  CHECK(!take(io, s, 100ms));
}

TEST_CASE("scheduler: stop wakes a waiting worker with nothing", "[scheduler]") {
  asio::io_context io;
  Scheduler s(io.get_executor());
  s.add(envelope(1h));
  bool done = false;
  std::optional<spool::Envelope> got = envelope(0s);
  asio::co_spawn(io, [&]() -> awaitable<void> {
    got = co_await s.next();
    done = true;
  }, asio::detached);
  io.run_for(20ms);
  CHECK(!done);
  s.stop();
  io.run_for(100ms);
  CHECK(done);
  CHECK(!got);
}
