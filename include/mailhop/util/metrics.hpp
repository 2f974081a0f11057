// The process's metrics: counters, gauges and histograms that the server, delivery and spool
// modules increment and the admin module renders as Prometheus text (GET /metrics).
//
// Every value is a lock-free atomic, so an increment costs one relaxed atomic add on any thread;
// the set of metrics and their label values is fixed here, at compile time (no map, no lock,
// no unbounded label cardinality from untrusted input).
//
// Besides the numbers, the registry remembers how the last connection to the next hop went
// (for /readyz): that record is small, written once per connection, and behind a mutex.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mailhop::util::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void add(std::int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void set(std::int64_t n) { value_.store(n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Cumulative buckets with fixed upper bounds in seconds (Prometheus "le"); the sum is kept in
// microseconds so it fits an integer atomic.
class Histogram {
 public:
  static constexpr std::size_t kBuckets = 12;
  explicit Histogram(const std::array<double, kBuckets>& bounds) : bounds_(bounds) {}

  void observe(double seconds);
  void observe(std::chrono::steady_clock::duration d) { observe(std::chrono::duration<double>(d).count()); }

  const std::array<double, kBuckets>& bounds() const { return bounds_; }
  // Observations <= bounds()[i] (cumulative), then the count and sum of all.
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6; }

 private:
  std::array<double, kBuckets> bounds_;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

// Counters told apart by one label whose values are fixed here. inc() with a value not in the
// list counts under the last one ("other").
template <std::size_t N>
class CounterFamily {
 public:
  explicit CounterFamily(const std::array<std::string_view, N>& values) : values_(values) {}
  void inc(std::string_view value, std::uint64_t n = 1) {
    for (std::size_t i = 0; i < N; ++i)
      if (values_[i] == value) return counters_[i].inc(n);
    counters_[N - 1].inc(n);
  }
  const std::array<std::string_view, N>& values() const { return values_; }
  std::uint64_t value(std::size_t i) const { return counters_[i].value(); }
  std::uint64_t value(std::string_view v) const {
    for (std::size_t i = 0; i < N; ++i)
      if (values_[i] == v) return counters_[i].value();
    return 0;
  }

 private:
  std::array<std::string_view, N> values_;
  std::array<Counter, N> counters_{};
};

// Causes of TLS and AUTH failures, in and out ("side" is part of the value, one label).
inline constexpr std::array<std::string_view, 6> kTlsCauses{
    "outbound_not_offered",  // relay.tls starttls, the next hop offers no STARTTLS or refuses it
    "outbound_handshake",    // handshake or certificate verification failed
    "inbound_handshake",     // a client's handshake failed
    "inbound_required",      // a client tried something before STARTTLS that needs TLS
    "inbound_plaintext_auth",  // reserved
    "other"};
inline constexpr std::array<std::string_view, 5> kAuthCauses{
    "outbound_rejected",      // the next hop refused our credentials (535 and friends)
    "outbound_not_possible",  // no usable mechanism, no password, or not encrypted
    "inbound_rejected",       // a client's credentials were wrong
    "inbound_malformed",      // a client's AUTH exchange did not parse
    "other"};

// How the last connection to the next hop went (connect, TLS, AUTH as configured).
struct NextHopRecord {
  bool ok = false;
  std::chrono::system_clock::time_point at{};
  std::string detail;  // the failure reason, or "host[ip]:port" when it worked
  bool tls = false;    // the connection was encrypted
};

struct Registry {
  // Messages: received = accepted with 250; relayed/deferred/bounced count recipients, as
  // Postfix's status=sent/deferred/bounced lines do.
  Counter messages_received;
  Counter messages_relayed;
  Counter messages_deferred;
  Counter messages_bounced;
  Counter delivery_attempts;

  Gauge sessions_open;           // inbound SMTP sessions
  Gauge relay_connections_open;  // connections to the next hop

  Histogram delivery_attempt_seconds{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram spool_commit_seconds{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}};

  CounterFamily<kTlsCauses.size()> tls_failures{kTlsCauses};
  CounterFamily<kAuthCauses.size()> auth_failures{kAuthCauses};

  void record_next_hop(NextHopRecord record);
  std::optional<NextHopRecord> last_next_hop() const;
  void forget_next_hop();  // for tests

 private:
  mutable std::mutex next_hop_mutex_;
  std::optional<NextHopRecord> next_hop_;
};

// The one registry of the process.
Registry& registry();

// Values only the scraper knows (from the queue) at render time.
struct QueueGauges {
  std::size_t size = 0;
  double oldest_age_seconds = 0;
};

// The Prometheus text exposition format (version 0.0.4), every name prefixed mailhop_.
std::string render_prometheus(const Registry& r, const QueueGauges& queue);

}  // namespace mailhop::util::metrics
