// The inbound side: one accept loop per configured listener, one Session coroutine per
// connection. Accepted messages are committed to the spool and then announced through
// `on_queued`; the server knows nothing of delivery.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/server/authenticator.hpp"
#include "mailhop/spool/envelope.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/tls/server_context.hpp"
#include "mailhop/util/listen_fds.hpp"

namespace mailhop::server {

struct ServerDeps {
  std::shared_ptr<const config::Config> config;
  spool::Spool* spool = nullptr;
  // Called once per message after it is durable (before the client sees 250), from any thread.
  std::function<void(const spool::Envelope&)> on_queued;
  // The server certificate (STARTTLS, implicit TLS); null when tls.cert_file is not set. The
  // owner may reload() it at any time (SIGHUP): new handshakes take the new one.
  std::shared_ptr<tls::ServerContextHolder> tls;
  // The users for AUTH; null when auth.users_file is not set. The owner may reload() it.
  std::shared_ptr<Authenticator> auth;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerDeps deps);
  ~Server();

  // Binds every listener. Throws std::system_error naming the address when one cannot be bound.
  //
  // Socket activation: a listener whose address (host and port exactly) is that of one of the
  // `inherited` listening sockets (util::take_listen_fds) adopts it instead of binding; its
  // settings (tls, auth, proxy_protocol) still come from its listen entry. Throws
  // std::invalid_argument (a configuration error) naming the address when an inherited socket
  // matches no listen entry, or when one is not a listening TCP socket; nothing accepts then.
  void start(std::vector<util::InheritedSocket> inherited = {});
  // Stops accepting; sessions in progress finish or time out. Idempotent.
  void stop();
  // SIGHUP: connections accepted from now on get this configuration, certificate and users
  // (each may differ from those at start; tls and auth may be null); sessions in progress keep
  // what they started with. The listeners and the connection limits stay as started.
  // Thread-safe.
  void reconfigure(std::shared_ptr<const config::Config> config, std::shared_ptr<tls::ServerContextHolder> tls,
                   std::shared_ptr<Authenticator> auth);
  // Sessions open right now.
  std::size_t sessions() const;
  // The addresses bound by start(), in the order of config.listen (a port 0 shows the one the
  // system chose).
  std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::server
