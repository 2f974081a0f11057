// The retry schedule: exponential from retry.initial, doubling to retry.max, jitter ±20%,
// never past the give-up time.
#include <catch2/catch.hpp>

#include "mailhop/delivery/retry.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
using namespace std::chrono_literals;
using config::Duration;

namespace {
config::Retry policy() {
  config::Retry r;
  r.initial = 1min;
  r.max = 1h;
  r.give_up_after = 24h * 5;
  return r;
}
}  // namespace

TEST_CASE("retry: backoff doubles from initial and stops at max", "[retry]") {
  auto r = policy();
  CHECK(backoff(r, 1) == Duration(1min));
  CHECK(backoff(r, 2) == Duration(2min));
  CHECK(backoff(r, 3) == Duration(4min));
  CHECK(backoff(r, 6) == Duration(32min));
  CHECK(backoff(r, 7) == Duration(1h));  // 64 min capped
  CHECK(backoff(r, 1000) == Duration(1h));  // no overflow however many attempts
}

TEST_CASE("retry: jitter spreads ±20% and stays within bounds", "[retry]") {
  auto r = policy();
  CHECK(jittered(r, 10min, 0.5) == Duration(10min));
  CHECK(jittered(r, 10min, 0.0) == Duration(8min));
  CHECK(jittered(r, 10min, 0.999999) > Duration(11min + 59s));
  CHECK(jittered(r, 10min, 0.999999) <= Duration(12min));
  CHECK(jittered(r, 1h, 0.99) == Duration(1h));          // never above max
  CHECK(jittered(r, 1h, 0.0) == Duration(48min));
  config::Retry tiny = r;
  tiny.initial = 100ms;
  CHECK(jittered(tiny, 100ms, 0.0) == Duration(1s));     // never below a second
}

TEST_CASE("retry: next attempt is not later than the give-up time", "[retry]") {
  auto r = policy();
  const auto arrival = util::SystemTime{} + 1000h;
  CHECK(next_attempt(r, 1, arrival, arrival, 0.5) == arrival + 1min);
  // 30 minutes before giving up, a one-hour backoff is cut to the give-up time.
  const auto late = arrival + r.give_up_after - 30min;
  CHECK(next_attempt(r, 50, arrival, late, 0.5) == arrival + r.give_up_after);
  CHECK(!expired(r, arrival, late));
  CHECK(expired(r, arrival, arrival + r.give_up_after));
}
