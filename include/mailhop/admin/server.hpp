// The admin HTTP server (Boost.Beast, HTTP/1.1 with keep-alive) on admin.listen:
//
//   GET  /healthz                      liveness: the io_context's loops turn
//   GET  /readyz                       readiness: listeners accept, spool writable, next hop OK
//   GET  /metrics                      Prometheus text format, names prefixed mailhop_
//   GET  /api/queue                    bare JSON array (the objects of `queue list --json`)
//   GET  /api/queue/{id}               one message
//   POST /api/queue/flush              every deferred message due now
//   POST /api/queue/{id}/retry|hold|release
//   DELETE /api/queue/{id}
//
// Errors are JSON ({"error": "..."}): 400 bad id, 401 missing or wrong token, 404 unknown path
// or id, 405 wrong method (with Allow), 413 body too large, 503 not ready / not running.
//
// SECURITY: requests are untrusted input. Bounds where they enter: 8 KiB of header, 4 KiB of
// body, a deadline for each request (a trickle of bytes does not extend it). With
// admin.token_file set every request needs `Authorization: Bearer <token>` (compared in
// constant time); config validation refuses a non-loopback admin.listen without one.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::delivery {
class DeliveryService;
}

namespace mailhop::admin {

struct AdminDeps {
  std::shared_ptr<const config::Config> config;
  spool::Spool* spool = nullptr;
  delivery::DeliveryService* delivery = nullptr;  // null: queue control answers 503
  // The SMTP listeners' bound addresses, for /readyz (a test connection to each); empty
  // function: the check is skipped.
  std::function<std::vector<boost::asio::ip::tcp::endpoint>()> listeners;
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, AdminDeps deps);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Reads admin.token_file and binds admin.listen. Throws std::system_error naming the
  // address or the file.
  void start();
  // Stops accepting and closes open connections. Idempotent.
  void stop();
  // SIGHUP: requests from now on use `config` (the relay settings /readyz checks and probes,
  // admin.readiness_window); a request in progress finishes with the one it started with.
  // admin.listen and admin.token_file are read by start() only (config::diff: restart).
  // Thread-safe.
  void reconfigure(std::shared_ptr<const config::Config> config);
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  struct Impl;  // opaque

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::admin
