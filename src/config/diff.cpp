// The reload diff (see mailhop/config/diff.hpp). Which keys need a restart follows from who
// reads them: what the listener, the spool, the io_context, the admin server and the delivery
// workers set up once at start; everything a session or a new relay connection reads from its
// configuration snapshot can change at once.
#include "mailhop/config/diff.hpp"

namespace mailhop::config {
namespace {

enum class Apply { now, restart };

class Differ {
 public:
  explicit Differ(std::vector<Change>& out) : out_(out) {}

  template <typename T>
  void key(const char* path, const T& running, const T& next, Apply apply) {
    if (!(running == next)) out_.push_back(Change{path, apply == Apply::restart});
  }

 private:
  std::vector<Change>& out_;
};

void relay_keys(Differ& d, const Relay& a, const Relay& b) {
  // Relay settings are read when a connection to the next hop is opened.
  const auto now = Apply::now;
  d.key("relay.host", a.host, b.host, now);
  d.key("relay.port", a.port, b.port, now);
  d.key("relay.tls", a.tls, b.tls, now);
  d.key("relay.verify", a.verify, b.verify, now);
  d.key("relay.ca_file", a.ca_file, b.ca_file, now);
  d.key("relay.username", a.username, b.username, now);
  d.key("relay.password_file", a.password_file, b.password_file, now);
  d.key("relay.password_env", a.password_env, b.password_env, now);
  d.key("relay.password", a.password, b.password, now);
  d.key("relay.auth", a.auth, b.auth, now);
  d.key("relay.oauth2", a.oauth2, b.oauth2, now);
  d.key("relay.fallback", a.fallback, b.fallback, now);
  const auto& t = a.timeouts;
  const auto& u = b.timeouts;
  d.key("relay.timeouts.connect", t.connect, u.connect, now);
  d.key("relay.timeouts.greeting", t.greeting, u.greeting, now);
  d.key("relay.timeouts.command", t.command, u.command, now);
  d.key("relay.timeouts.data_init", t.data_init, u.data_init, now);
  d.key("relay.timeouts.data_block", t.data_block, u.data_block, now);
  d.key("relay.timeouts.data_end", t.data_end, u.data_end, now);
  d.key("relay.timeouts.idle", t.idle, u.idle, now);
}

}  // namespace

std::vector<Change> diff(const Config& a, const Config& b) {
  std::vector<Change> out;
  Differ d(out);
  const auto now = Apply::now;
  const auto restart = Apply::restart;
  d.key("hostname", a.hostname, b.hostname, now);
  d.key("threads", a.threads, b.threads, restart);
  d.key("listen", a.listen, b.listen, restart);
  d.key("allowed_networks", a.allowed_networks, b.allowed_networks, now);
  d.key("trusted_proxies", a.trusted_proxies, b.trusted_proxies, now);
  d.key("limits.max_message_size", a.limits.max_message_size, b.limits.max_message_size, now);
  d.key("limits.max_recipients", a.limits.max_recipients, b.limits.max_recipients, now);
  // The connection counters are made once, with their limits, when the server starts.
  d.key("limits.max_connections", a.limits.max_connections, b.limits.max_connections, restart);
  d.key("limits.max_connections_per_ip", a.limits.max_connections_per_ip, b.limits.max_connections_per_ip, restart);
  d.key("limits.max_errors", a.limits.max_errors, b.limits.max_errors, now);
  d.key("limits.command_timeout", a.limits.command_timeout, b.limits.command_timeout, now);
  d.key("limits.data_timeout", a.limits.data_timeout, b.limits.data_timeout, now);
  d.key("limits.session_timeout", a.limits.session_timeout, b.limits.session_timeout, now);
  d.key("spool.path", a.spool_path, b.spool_path, restart);
  d.key("tls.cert_file", a.tls.cert_file, b.tls.cert_file, now);
  d.key("tls.key_file", a.tls.key_file, b.tls.key_file, now);
  d.key("auth.users_file", a.auth.users_file, b.auth.users_file, now);
  relay_keys(d, a.relay, b.relay);
  // The workers are coroutines started once; the pool's limit is read at every connect.
  d.key("delivery.workers", a.delivery.workers, b.delivery.workers, restart);
  d.key("delivery.max_connections", a.delivery.max_connections, b.delivery.max_connections, now);
  d.key("delivery.retry.initial", a.delivery.retry.initial, b.delivery.retry.initial, now);
  d.key("delivery.retry.max", a.delivery.retry.max, b.delivery.retry.max, now);
  d.key("delivery.retry.give_up_after", a.delivery.retry.give_up_after, b.delivery.retry.give_up_after, now);
  d.key("delivery.shutdown_grace", a.delivery.shutdown_grace, b.delivery.shutdown_grace, now);
  // The admin server binds and reads its token once; each request reads the rest from the
  // configuration it was last given.
  d.key("admin.listen", a.admin.listen, b.admin.listen, restart);
  d.key("admin.token_file", a.admin.token_file, b.admin.token_file, restart);
  d.key("admin.readiness_window", a.admin.readiness_window, b.admin.readiness_window, now);
  d.key("log.level", a.log.level, b.log.level, now);
  d.key("log.format", a.log.format, b.log.format, now);
  return out;
}

Config reloadable(const Config& running, const Config& next) {
  Config c = next;
  c.threads = running.threads;
  c.listen = running.listen;
  c.limits.max_connections = running.limits.max_connections;
  c.limits.max_connections_per_ip = running.limits.max_connections_per_ip;
  c.spool_path = running.spool_path;
  c.delivery.workers = running.delivery.workers;
  c.admin.listen = running.admin.listen;
  c.admin.token_file = running.admin.token_file;
  return c;
}

}  // namespace mailhop::config
