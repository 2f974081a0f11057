// The metrics registry and its Prometheus text rendering (see mailhop/util/metrics.hpp).
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4).
#include "mailhop/util/metrics.hpp"

#include <fmt/format.h>

namespace mailhop::util::metrics {

void Histogram::observe(double seconds) {
  if (seconds < 0) seconds = 0;
  for (std::size_t i = 0; i < kBuckets; ++i)
    if (seconds <= bounds_[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Registry::record_next_hop(NextHopRecord record) {
  std::lock_guard lock(next_hop_mutex_);
  next_hop_ = std::move(record);
}

std::optional<NextHopRecord> Registry::last_next_hop() const {
  std::lock_guard lock(next_hop_mutex_);
  return next_hop_;
}

void Registry::forget_next_hop() {
  std::lock_guard lock(next_hop_mutex_);
  next_hop_.reset();
}

Registry& registry() {
  static Registry r;
  return r;
}

namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP mailhop_{} {}\n# TYPE mailhop_{} {}\n", name, help, name, type);
}

void counter(std::string& out, std::string_view name, std::string_view help, std::uint64_t v) {
  header(out, name, "counter", help);
  fmt::format_to(std::back_inserter(out), "mailhop_{} {}\n", name, v);
}

void gauge(std::string& out, std::string_view name, std::string_view help, double v) {
  header(out, name, "gauge", help);
  fmt::format_to(std::back_inserter(out), "mailhop_{} {}\n", name, v);
}

void histogram(std::string& out, std::string_view name, std::string_view help, const Histogram& h) {
  header(out, name, "histogram", help);
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i)
    fmt::format_to(std::back_inserter(out), "mailhop_{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds()[i], h.bucket(i));
  fmt::format_to(std::back_inserter(out), "mailhop_{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count());
  fmt::format_to(std::back_inserter(out), "mailhop_{}_sum {}\nmailhop_{}_count {}\n", name, h.sum(), name, h.count());
}

template <std::size_t N>
void family(std::string& out, std::string_view name, std::string_view help, const CounterFamily<N>& f) {
  header(out, name, "counter", help);
  for (std::size_t i = 0; i < N; ++i)
    fmt::format_to(std::back_inserter(out), "mailhop_{}{{cause=\"{}\"}} {}\n", name, f.values()[i], f.value(i));
}

}  // namespace

std::string render_prometheus(const Registry& r, const QueueGauges& queue) {
  std::string out;
  counter(out, "messages_received_total", "Messages accepted from clients (250 after DATA).", r.messages_received.value());
  counter(out, "messages_relayed_total", "Recipients the next hop accepted.", r.messages_relayed.value());
  counter(out, "messages_deferred_total", "Recipient delivery attempts deferred (retried later).",
          r.messages_deferred.value());
  counter(out, "messages_bounced_total", "Recipients that failed for good (bounce sent).", r.messages_bounced.value());
  counter(out, "delivery_attempts_total", "Delivery attempts (one transaction per message).", r.delivery_attempts.value());
  gauge(out, "queue_size", "Messages in the queue.", static_cast<double>(queue.size));
  gauge(out, "queue_oldest_message_age_seconds", "Age of the oldest queued message (0 when empty).",
        queue.oldest_age_seconds);
  gauge(out, "sessions_open", "Inbound SMTP sessions open.", static_cast<double>(r.sessions_open.value()));
  gauge(out, "relay_connections_open", "Connections to the next hop open.",
        static_cast<double>(r.relay_connections_open.value()));
  histogram(out, "delivery_attempt_duration_seconds", "Duration of one delivery attempt (connect to last reply).",
            r.delivery_attempt_seconds);
  histogram(out, "spool_commit_duration_seconds", "Time to make a received message durable (group commit included).",
            r.spool_commit_seconds);
  family(out, "tls_failures_total", "TLS failures by cause.", r.tls_failures);
  family(out, "auth_failures_total", "AUTH failures by cause.", r.auth_failures);
  return out;
}

}  // namespace mailhop::util::metrics
