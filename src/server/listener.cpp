// The Server: binds the configured listeners, runs one accept loop per listener, applies the
// connection limits (total, and per client address with allowed_networks exempt), and spawns
// one session coroutine per admitted connection on its own strand.
//
// SECURITY: a client over a limit gets one 421 line, written under a short deadline, and the
// connection is closed; it never reaches a session. stop() closes the acceptors and signals
// the sessions, which end at their next wait for a command (or finish their message first).
//
// Socket activation: start() adopts the listening sockets a service manager passed (matched to
// listen entries by their local address) and binds the rest.
//
// Reload: each admitted connection takes a snapshot of the current configuration, certificate
// and users (one shared_ptr each), so reconfigure() affects only connections accepted later.
#include "mailhop/server/server.hpp"

#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/server/connection_limits.hpp"
#include "mailhop/server/policy.hpp"
#include "mailhop/server/session.hpp"
#include "mailhop/server/shutdown.hpp"
#include "mailhop/util/metrics.hpp"

namespace mailhop::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace boost::asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr auto kRefusalWriteTime = std::chrono::seconds(10);
constexpr auto kAcceptBackoff = std::chrono::milliseconds(200);

// One line for a client over a connection limit, then close.
asio::awaitable<void> refuse(tcp::socket socket, std::string reply) {
  asio::steady_timer timer(socket.get_executor(), kRefusalWriteTime);
  co_await (asio::async_write(socket, asio::buffer(reply), use_tuple) || timer.async_wait(use_tuple));
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

std::string to_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// The listen entry with exactly `address` (host and port) that has no socket yet.
std::optional<std::size_t> listen_entry_for(const std::vector<config::Listener>& listen,
                                            const std::vector<std::optional<std::size_t>>& adopted,
                                            const tcp::endpoint& address) {
  for (std::size_t l = 0; l < listen.size(); ++l) {
    boost::system::error_code ec;
    auto host = asio::ip::make_address(listen[l].host, ec);
    if (!ec && !adopted[l] && tcp::endpoint(host, listen[l].port) == address) return l;
  }
  return std::nullopt;
}

void log_if_failed(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} ended by an error: {}", what, ex.what());
  }
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  struct Endpoint {
    config::Listener listener;
    asio::strand<asio::io_context::executor_type> strand;
    tcp::acceptor acceptor;
    tcp::endpoint bound;
    Endpoint(asio::io_context& io, config::Listener l)
        : listener(std::move(l)), strand(asio::make_strand(io)), acceptor(strand) {}
  };

  Impl(asio::io_context& io_, ServerDeps deps_)
      : io(io_),
        deps(std::move(deps_)),
        limits(deps.config->limits.max_connections, deps.config->limits.max_connections_per_ip) {}

  asio::io_context& io;
  ServerDeps deps;  // config, tls and auth guarded by `current_mutex` (reconfigure)
  mutable std::mutex current_mutex;
  ConnectionLimits limits;
  ShutdownSignal shutdown;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::atomic<bool> stopping{false};

  // What a connection accepted now is served with.
  ServerDeps current() const {
    std::lock_guard lock(current_mutex);
    return deps;
  }

  void bind(Endpoint& e);
  void adopt(Endpoint& e, const util::InheritedSocket& socket, const tcp::endpoint& address);
  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self, Endpoint& e);
  void admit(tcp::socket socket, const config::Listener& listener);
  static asio::awaitable<void> serve(std::shared_ptr<Impl> self, ServerDeps snapshot, tcp::socket socket,
                                     config::Listener listener, ConnectionLimits::Slot slot);
};

void Server::Impl::bind(Endpoint& e) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(e.listener.host, ec);
  if (ec) throw std::system_error(std::error_code(ec), "cannot listen on " + e.listener.address);
  tcp::endpoint endpoint(address, e.listener.port);
  auto fail = [&](const char* step) {
    throw std::system_error(std::error_code(ec), "cannot listen on " + e.listener.address + " (" + step + ")");
  };
  e.acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("socket");
  e.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);  // restart while old connections linger
  // [::]:25 and 0.0.0.0:25 may both be configured: keep IPv6 sockets IPv6 only.
  if (address.is_v6()) e.acceptor.set_option(asio::ip::v6_only(true), ec);
  e.acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  e.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
  e.bound = e.acceptor.local_endpoint(ec);
}

void Server::Impl::adopt(Endpoint& e, const util::InheritedSocket& socket, const tcp::endpoint& address) {
  boost::system::error_code ec;
  e.acceptor.assign(address.protocol(), socket.fd, ec);
  if (ec) throw std::system_error(std::error_code(ec), "cannot use the socket passed for " + e.listener.address);
  e.bound = address;
  spdlog::info("listen {}: the socket passed by the service manager (fd {}{}{})", e.listener.address, socket.fd,
               socket.name.empty() ? "" : ", ", socket.name);
}

asio::awaitable<void> Server::Impl::accept_loop(std::shared_ptr<Impl> self, Endpoint& e) {
  for (;;) {
    // Each connection gets its own strand, so a session's handlers never run concurrently
    // when the io_context runs several threads.
    auto [ec, socket] = co_await e.acceptor.async_accept(asio::any_io_executor(asio::make_strand(self->io)), use_tuple);
    if (self->stopping.load()) break;
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS: a pause lets sessions end and free descriptors instead of spinning.
      spdlog::warn("accept on {}: {}", e.listener.address, ec.message());
      asio::steady_timer pause(e.strand, kAcceptBackoff);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    self->admit(std::move(socket), e.listener);
  }
}

void Server::Impl::admit(tcp::socket socket, const config::Listener& listener) {
  boost::system::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  auto client = canonical_address(remote.address());
  ServerDeps snapshot = current();
  auto acquired = limits.acquire(client, exempt_from_per_ip_limit(*snapshot.config, client));
  if (!acquired.slot) {
    const bool total = acquired.refusal == ConnectionLimits::Refusal::total;
    spdlog::warn("too many connections{} from unknown[{}]", total ? "" : " from one address", client.to_string());
    auto text = snapshot.config->hostname + (total ? " Too many connections, try again later"
                                               : " Too many connections from your address, try again later");
    auto reply = "421 4.7.0 " + text + "\r\n";
    auto ex = socket.get_executor();
    asio::co_spawn(ex, refuse(std::move(socket), std::move(reply)),
                   [](std::exception_ptr e) { log_if_failed(e, "connection refusal"); });
    return;
  }
  // Replies are written whole, one write per reply or pipelined group: Nagle's algorithm
  // would only hold a reply back until the client's delayed ACK.
  socket.set_option(tcp::no_delay(true), ec);
  auto ex = socket.get_executor();
  asio::co_spawn(ex, serve(shared_from_this(), std::move(snapshot), std::move(socket), listener, std::move(*acquired.slot)),
                 [](std::exception_ptr e) { log_if_failed(e, "session"); });
}

asio::awaitable<void> Server::Impl::serve(std::shared_ptr<Impl> self, ServerDeps snapshot, tcp::socket socket,
                                          config::Listener listener, [[maybe_unused]] ConnectionLimits::Slot slot) {
  SessionEnv env{std::move(snapshot.config), snapshot.spool, std::move(snapshot.on_queued), &self->shutdown,
                 std::move(listener), std::move(snapshot.tls), std::move(snapshot.auth)};
  auto& open_sessions = util::metrics::registry().sessions_open;
  open_sessions.add();
  struct Closed {  // however the session ends
    util::metrics::Gauge& gauge;
    ~Closed() { gauge.sub(); }
  } closed{open_sessions};
  co_await run_session(std::move(socket), std::move(env));
  // `slot` is released here, when the session is over.
}

Server::Server(asio::io_context& io, ServerDeps deps) : impl_(std::make_shared<Impl>(io, std::move(deps))) {}

Server::~Server() { stop(); }

void Server::start(std::vector<util::InheritedSocket> inherited) {
  // Every inherited socket is matched before anything is bound, so a mismatch fails the start
  // at once and leaves nothing accepting.
  const auto& listen = impl_->deps.config->listen;
  std::vector<std::optional<std::size_t>> adopted(listen.size());  // listen entry -> inherited socket
  std::vector<tcp::endpoint> addresses;
  for (std::size_t i = 0; i < inherited.size(); ++i) {
    addresses.push_back(util::listening_address(inherited[i]));
    auto entry = listen_entry_for(listen, adopted, addresses[i]);
    if (!entry)
      throw std::invalid_argument("the socket passed by the service manager on " + to_text(addresses[i]) + " (fd " +
                                  std::to_string(inherited[i].fd) +
                                  ") matches no listen entry: add the address to listen, or remove it from the "
                                  "socket unit");
    adopted[*entry] = i;
  }
  for (std::size_t l = 0; l < listen.size(); ++l) {
    impl_->endpoints.push_back(std::make_unique<Impl::Endpoint>(impl_->io, listen[l]));
    if (adopted[l]) {
      impl_->adopt(*impl_->endpoints.back(), inherited[*adopted[l]], addresses[*adopted[l]]);
    } else {
      impl_->bind(*impl_->endpoints.back());
    }
  }
  // Only once every listener is bound: a failure above leaves nothing accepting.
  for (auto& e : impl_->endpoints) {
    asio::co_spawn(e->strand, Impl::accept_loop(impl_, *e),
                   [](std::exception_ptr ex) { log_if_failed(ex, "accept loop"); });
  }
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& e : impl_->endpoints) {
    // The acceptor belongs to its strand: close it there.
    asio::post(e->strand, [impl = impl_, ep = e.get()] {
      boost::system::error_code ignored;
      ep->acceptor.close(ignored);
    });
  }
  impl_->shutdown.request();
}

void Server::reconfigure(std::shared_ptr<const config::Config> config, std::shared_ptr<tls::ServerContextHolder> tls,
                         std::shared_ptr<Authenticator> auth) {
  std::lock_guard lock(impl_->current_mutex);
  impl_->deps.config = std::move(config);
  impl_->deps.tls = std::move(tls);
  impl_->deps.auth = std::move(auth);
}

std::size_t Server::sessions() const { return impl_->limits.total(); }

std::vector<tcp::endpoint> Server::local_endpoints() const {
  std::vector<tcp::endpoint> result;
  for (const auto& e : impl_->endpoints) result.push_back(e->bound);
  return result;
}

}  // namespace mailhop::server
