// The admin API's handlers (see routes.hpp and mailhop/admin/server.hpp).
//
// Blocking spool work (listing, loading, the readiness write probe) runs on the admin's own
// one-thread disk pool, never on the io_context's threads.
//
// SECURITY: the path comes from the network. A queue ID is accepted only in QueueId's exact
// form (26 hex digits), so it can never name another file; nothing from the request is echoed
// into a response unescaped (JSON strings are built by Boost.JSON).
#include "routes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/admin/queue_json.hpp"
#include "mailhop/delivery/delivery.hpp"
#include "mailhop/delivery/token_provider.hpp"
#include "mailhop/util/metrics.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::admin::detail {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

Response json_error(int status, std::string message) {
  json::object o;
  o["error"] = valid_utf8(message);
  return Response{status, json::serialize(o) + "\n", "application/json", {}};
}

Settings Context::settings() const {
  std::lock_guard lock(mutex_);
  return settings_;
}

void Context::reconfigure(std::shared_ptr<const config::Config> next) {
  std::lock_guard lock(mutex_);
  if (settings_.config && settings_.config->relay != next->relay) settings_.relay_since = std::chrono::system_clock::now();
  settings_.config = std::move(next);
}

namespace {

Response json_ok(int status, const json::value& v) { return Response{status, json::serialize(v) + "\n", "application/json", {}}; }

Response method_not_allowed(std::string allow) {
  auto r = json_error(405, "method not allowed; allowed: " + allow);
  r.allow = std::move(allow);
  return r;
}

// ---- blocking work, on the disk pool ----

asio::awaitable<std::vector<spool::Envelope>> list_on_disk(spool::Spool* spool) { co_return spool->list(); }

struct Loaded {
  bool present = false;
  std::optional<spool::Envelope> envelope;
  std::string error;
};

asio::awaitable<Loaded> load_on_disk(spool::Spool* spool, spool::QueueId id) {
  Loaded l;
  l.present = spool->contains(id);
  if (l.present) l.envelope = spool->load(id, &l.error);
  co_return l;
}

// The spool is writable: a small file created, written, flushed and removed in its tmp/ (the
// start-up scan removes a leftover there). Empty when fine, else why not.
asio::awaitable<std::string> probe_write(std::filesystem::path root) {
  auto path = root / "tmp" / ("readyz-probe." + std::to_string(::getpid()));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) co_return "cannot create " + path.string() + ": " + std::strerror(errno);
  std::string why;
  if (::write(fd, "ok\n", 3) != 3 || ::fsync(fd) != 0) why = "cannot write " + path.string() + ": " + std::strerror(errno);
  ::close(fd);
  ::unlink(path.c_str());
  co_return why;
}

// ---- readiness ----

// Each listener answers a TCP connect within 2 s (closed at once). Empty when fine.
asio::awaitable<std::string> check_listeners(std::vector<tcp::endpoint> endpoints) {
  if (endpoints.empty()) co_return "no listener is bound";
  auto ex = co_await asio::this_coro::executor;
  for (auto ep : endpoints) {
    if (ep.address().is_unspecified())
      ep.address(ep.address().is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                       : asio::ip::address(asio::ip::address_v4::loopback()));
    tcp::socket socket(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(std::chrono::seconds(2));
    auto r = co_await (socket.async_connect(ep, use_tuple) || timer.async_wait(use_tuple));
    std::string where = ep.address().to_string() + ":" + std::to_string(ep.port());
    if (r.index() == 1) co_return "listener " + where + " does not accept (timed out)";
    if (auto [ec] = std::get<0>(r); ec) co_return "listener " + where + " does not accept: " + ec.message();
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  co_return std::string();
}

json::object check(bool ok, const std::string& detail) {
  json::object o;
  o["ok"] = ok;
  o["detail"] = valid_utf8(detail);
  return o;
}

asio::awaitable<Response> readyz(std::shared_ptr<Context> ctx) {
  const auto settings = ctx->settings();
  const auto& config = *settings.config;
  json::object checks;
  json::array failed;

  std::string listeners_why;
  if (ctx->deps.listeners) {
    auto endpoints = ctx->deps.listeners();
    auto why = co_await check_listeners(std::move(endpoints));
    listeners_why = std::move(why);
    checks["listeners"] = check(listeners_why.empty(), listeners_why.empty() ? "accepting" : listeners_why);
    if (!listeners_why.empty()) failed.push_back("listeners");
  }

  std::string spool_why = "no spool";
  if (ctx->deps.spool) {
    std::filesystem::path root = ctx->deps.spool->root();
    auto why = co_await asio::co_spawn(ctx->disk, probe_write(root), asio::use_awaitable);
    spool_why = std::move(why);
  }
  checks["spool"] = check(spool_why.empty(), spool_why.empty() ? "writable" : spool_why);
  if (!spool_why.empty()) failed.push_back("spool");

  // The next hop: the last connection within the window, or a probe when there was none (or
  // the last one failed more than 30 s ago: a repaired next hop is noticed without mail; or it
  // went to the next hop of the relay settings before a reload).
  const auto now = std::chrono::system_clock::now();
  auto record = util::metrics::registry().last_next_hop();
  const bool stale = !record || record->at < settings.relay_since || now - record->at > config.admin.readiness_window ||
                     (!record->ok && now - record->at > std::chrono::seconds(30));
  if (stale && ctx->deps.delivery) {
    auto probed = co_await ctx->deps.delivery->probe();
    record = probed;
  }
  std::string hop_why;
  if (!record) {
    hop_why = "no connection to the next hop yet";
  } else if (!record->ok) {
    hop_why = record->detail;
  } else if ((config.relay.tls == config::RelayTls::starttls || config.relay.tls == config::RelayTls::implicit) &&
             !record->tls) {
    hop_why = "the last connection to the next hop was not encrypted";
  }
  json::object hop = check(hop_why.empty(), hop_why.empty() ? record->detail : hop_why);
  if (record) hop["at"] = util::rfc3339(record->at);
  checks["next_hop"] = std::move(hop);
  if (!hop_why.empty()) failed.push_back("next_hop");

  // OAuth2 (issue 7): a token endpoint that fails means the next AUTH will fail too.
  if (config.relay.auth == config::RelayAuth::xoauth2 || config.relay.auth == config::RelayAuth::oauthbearer) {
    auto provider = delivery::TokenProvider::shared(config.relay);
    const bool ok = provider->healthy();
    checks["oauth2_token"] = check(ok, ok ? "token endpoint answering" : provider->last_error());
    if (!ok) failed.push_back("oauth2_token");
  }

  json::object body;
  body["ready"] = failed.empty();
  body["failed"] = std::move(failed);
  body["checks"] = std::move(checks);
  co_return json_ok(body["failed"].as_array().empty() ? 200 : 503, body);
}

// ---- metrics ----

asio::awaitable<Response> metrics(std::shared_ptr<Context> ctx) {
  util::metrics::QueueGauges gauges;
  auto& registry = util::metrics::registry();
  if (ctx->deps.delivery) {
    auto status = co_await ctx->deps.delivery->status();
    gauges.size = status.queued;
    if (status.oldest_arrival)
      gauges.oldest_age_seconds =
          std::max(0.0, std::chrono::duration<double>(std::chrono::system_clock::now() - *status.oldest_arrival).count());
    registry.relay_connections_open.set(static_cast<std::int64_t>(status.connections_open));
  }
  Response r{200, util::metrics::render_prometheus(registry, gauges), "text/plain; version=0.0.4; charset=utf-8", {}};
  co_return r;
}

// ---- the queue ----

asio::awaitable<Response> queue_list(std::shared_ptr<Context> ctx) {
  auto queue = co_await asio::co_spawn(ctx->disk, list_on_disk(ctx->deps.spool), asio::use_awaitable);
  co_return json_ok(200, to_json(queue));
}

asio::awaitable<Response> queue_show(std::shared_ptr<Context> ctx, spool::QueueId id) {
  auto loaded = co_await asio::co_spawn(ctx->disk, load_on_disk(ctx->deps.spool, id), asio::use_awaitable);
  if (!loaded.present) co_return json_error(404, "no message " + id.str() + " in the queue");
  if (!loaded.envelope) co_return json_error(500, "cannot read the envelope of " + id.str() + ": " + loaded.error);
  co_return json_ok(200, to_json(*loaded.envelope));
}

asio::awaitable<Response> queue_control(std::shared_ptr<Context> ctx, spool::QueueId id, std::string action) {
  using Status = delivery::DeliveryService::ControlStatus;
  if (!ctx->deps.delivery) co_return json_error(503, "delivery is not running");
  delivery::DeliveryService::ControlResult result;
  if (action == "hold") {
    result = co_await ctx->deps.delivery->hold(id);
  } else if (action == "release") {
    result = co_await ctx->deps.delivery->release(id);
  } else if (action == "retry") {
    result = co_await ctx->deps.delivery->retry(id);
  } else {
    result = co_await ctx->deps.delivery->remove(id);
  }
  switch (result.status) {
    case Status::not_found: co_return json_error(404, "no message " + id.str() + " in the queue");
    case Status::conflict: co_return json_error(409, result.detail);
    case Status::failed: co_return json_error(503, result.detail);
    case Status::done:
    case Status::after_attempt: break;
  }
  json::object o;
  o["id"] = id.str();
  o["action"] = action;
  // A message out for delivery right now: the attempt finishes first (never cut off half-way).
  o["after_attempt"] = result.status == Status::after_attempt;
  co_return json_ok(result.status == Status::after_attempt ? 202 : 200, o);
}

asio::awaitable<Response> queue_flush(std::shared_ptr<Context> ctx) {
  if (!ctx->deps.delivery) co_return json_error(503, "delivery is not running");
  auto n = co_await ctx->deps.delivery->flush();
  json::object o;
  o["due_now"] = n;
  co_return json_ok(200, o);
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

asio::awaitable<Response> handle(std::shared_ptr<Context> ctx, Request req) {
  std::string_view path = req.target;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  const std::string& m = req.method;
  const bool get = m == "GET" || m == "HEAD";

  if (path == "/healthz") {
    if (!get) co_return method_not_allowed("GET, HEAD");
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    const auto age = std::chrono::nanoseconds(now - ctx->last_tick.load());
    json::object o;
    o["alive"] = age < std::chrono::seconds(5);
    o["heartbeat_age_seconds"] = std::chrono::duration<double>(age).count();
    co_return json_ok(age < std::chrono::seconds(5) ? 200 : 503, o);
  }
  if (path == "/readyz") {
    if (!get) co_return method_not_allowed("GET, HEAD");
    auto r = co_await readyz(ctx);
    co_return r;
  }
  if (path == "/metrics") {
    if (!get) co_return method_not_allowed("GET, HEAD");
    auto r = co_await metrics(ctx);
    co_return r;
  }

  auto parts = split_path(path);
  if (parts.size() < 2 || parts.size() > 4 || parts[0] != "api" || parts[1] != "queue" || (path.ends_with("/") && parts.size() > 2))
    co_return json_error(404, "no such resource");
  if (!ctx->deps.spool) co_return json_error(503, "no spool");
  if (parts.size() == 2) {
    if (!get) co_return method_not_allowed("GET, HEAD");
    auto r = co_await queue_list(ctx);
    co_return r;
  }
  if (parts.size() == 3 && parts[2] == "flush") {
    if (m != "POST") co_return method_not_allowed("POST");
    auto r = co_await queue_flush(ctx);
    co_return r;
  }
  if (parts.size() == 4 && parts[3] != "retry" && parts[3] != "hold" && parts[3] != "release")
    co_return json_error(404, "no such resource");
  if (parts.size() == 3 && !get && m != "DELETE") co_return method_not_allowed("GET, HEAD, DELETE");
  if (parts.size() == 4 && m != "POST") co_return method_not_allowed("POST");
  auto id = spool::QueueId::parse(parts[2]);
  if (!id) co_return json_error(400, "not a queue ID (26 hex digits, as the queue list shows them)");
  if (parts.size() == 3 && get) {
    spool::QueueId the_id = *id;
    auto r = co_await queue_show(ctx, the_id);
    co_return r;
  }
  std::string action = parts.size() == 3 ? std::string("delete") : std::string(parts[3]);
  spool::QueueId the_id = *id;
  auto r = co_await queue_control(ctx, the_id, action);
  co_return r;
}

}  // namespace mailhop::admin::detail
