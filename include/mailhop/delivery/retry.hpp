// The retry schedule: exponential backoff from retry.initial, doubling up to retry.max, spread
// by jitter so that messages deferred together (a next hop that was down) do not all come back
// at the same instant. Pure functions; the caller supplies the randomness.
#pragma once

#include <chrono>

#include "mailhop/config/config.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::delivery {

inline constexpr double kRetryJitter = 0.2;  // ±20%

// The delay after the `attempts`-th failed attempt (attempts >= 1), before jitter:
// initial, 2·initial, 4·initial, … capped at max.
config::Duration backoff(const config::Retry& retry, unsigned attempts);

// `delay` spread by ±spread, where `u` is uniform in [0, 1); never above retry.max and never
// below one second.
config::Duration jittered(const config::Retry& retry, config::Duration delay, double u, double spread = kRetryJitter);

// When to try again after the `attempts`-th attempt at `now`: backoff with jitter, but not
// later than the give-up time (arrival + give_up_after), so that an expiring message gets its
// last attempt on time.
util::SystemTime next_attempt(const config::Retry& retry, unsigned attempts, util::SystemTime arrival,
                              util::SystemTime now, double u);

// true when the message has been queued for give_up_after or longer.
bool expired(const config::Retry& retry, util::SystemTime arrival, util::SystemTime now);

}  // namespace mailhop::delivery
