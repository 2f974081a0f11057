// The retry schedule (see mailhop/delivery/retry.hpp).
#include "mailhop/delivery/retry.hpp"

#include <algorithm>

namespace mailhop::delivery {

using config::Duration;

Duration backoff(const config::Retry& retry, unsigned attempts) {
  Duration delay = std::max(retry.initial, Duration(1));
  for (unsigned i = 1; i < attempts && delay < retry.max; ++i) delay *= 2;
  return std::min(delay, retry.max);
}

Duration jittered(const config::Retry& retry, Duration delay, double u, double spread) {
  const double factor = 1.0 + spread * (2.0 * u - 1.0);
  auto spread_ms = Duration(static_cast<Duration::rep>(static_cast<double>(delay.count()) * factor));
  return std::clamp(spread_ms, std::min(Duration(std::chrono::seconds(1)), retry.max), retry.max);
}

util::SystemTime next_attempt(const config::Retry& retry, unsigned attempts, util::SystemTime arrival,
                              util::SystemTime now, double u) {
  const util::SystemTime next = now + jittered(retry, backoff(retry, attempts), u);
  const util::SystemTime give_up = arrival + retry.give_up_after;
  return give_up > now ? std::min(next, give_up) : next;
}

bool expired(const config::Retry& retry, util::SystemTime arrival, util::SystemTime now) {
  return now - arrival >= retry.give_up_after;
}

}  // namespace mailhop::delivery
