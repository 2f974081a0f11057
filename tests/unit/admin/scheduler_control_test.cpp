// The scheduler's operator controls (delivery/scheduler.hpp), which the admin API relies on:
// a held message is never handed out; a change asked while a worker has the message is marked
// and applied when the worker hands it back.
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include "mailhop/delivery/scheduler.hpp"

using namespace mailhop;
namespace asio = boost::asio;
using Where = delivery::Scheduler::Where;

namespace {

spool::Envelope message(bool held = false, std::chrono::seconds delay = std::chrono::seconds(0)) {
  spool::Envelope e;
  e.sender = "a@example.org";
  e.arrival = std::chrono::system_clock::now();
  e.next_attempt = e.arrival + delay;
  e.held = held;
  return e;
}

// The next message a worker would get, if one is due now.
std::optional<spool::Envelope> take(asio::io_context& io, delivery::Scheduler& s) {
  auto f = asio::co_spawn(io, s.next(), asio::use_future);
  io.restart();
  io.poll();
  if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    s.stop();  // wakes the waiting worker with nullopt
    io.restart();
    io.poll();
  }
  return f.get();
}

}  // namespace

TEST_CASE("scheduler control: hold, release, retry, flush, forget") {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  delivery::Scheduler s(strand);
  auto deferred = message(false, std::chrono::hours(1));
  auto held = message(true);
  s.add(deferred);
  s.add(held);
  CHECK(s.where(deferred.id) == Where::waiting);
  CHECK(s.where(held.id) == Where::waiting);
  CHECK_FALSE(s.retry(held.id));  // held: release it first
  CHECK(s.flush() == 1);          // the deferred one only
  CHECK(s.where(deferred.id) == Where::due);

  REQUIRE(s.set_held(deferred.id, true));
  CHECK(s.find(deferred.id)->held);
  CHECK(s.where(deferred.id) == Where::waiting);
  REQUIRE(s.set_held(held.id, false));
  CHECK(s.where(held.id) == Where::due);

  auto got = take(io, s);
  REQUIRE(got);
  CHECK(got->id == held.id);  // the released one; the held one is never handed out
  CHECK(s.forget(deferred.id));
  CHECK(s.where(deferred.id) == Where::absent);
  CHECK(s.set_held(spool::QueueId::generate(), true) == nullptr);
}

TEST_CASE("scheduler control: changes while a worker has the message are marked") {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  delivery::Scheduler s(strand);
  auto m = message();
  s.add(m);
  auto out = take(io, s);
  REQUIRE(out);
  REQUIRE(s.where(m.id) == Where::out);

  s.set_held(m.id, true);
  auto marks = s.take_marks(m.id);
  REQUIRE(marks.held);
  CHECK(*marks.held);
  CHECK_FALSE(marks.removed);
  s.done(m.id, *out);  // the worker's envelope still says held: no
  CHECK(s.find(m.id)->held);
  CHECK(s.where(m.id) == Where::waiting);

  s.set_held(m.id, false);
  auto again = take(io, s);
  REQUIRE(again);
  CHECK_FALSE(s.forget(m.id));  // out: the worker removes it
  CHECK(s.take_marks(m.id).removed);
  s.done(m.id, std::nullopt);
  CHECK(s.where(m.id) == Where::absent);
}
