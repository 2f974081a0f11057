// One inbound SMTP session (RFC 5321), from the greeting to the close, as one coroutine that
// owns its socket. The listener spawns it after the connection limits let the client in; tests
// drive it directly over a loopback socket.
//
// SECURITY: everything read from the socket is untrusted. Input is bounded where it enters
// (command line length, message size), every wait has a deadline that traffic does not extend
// (per command, per DATA phase, per session), and the error counter ends abusive sessions.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/server/authenticator.hpp"
#include "mailhop/server/shutdown.hpp"
#include "mailhop/spool/envelope.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/tls/server_context.hpp"

namespace mailhop::server {

struct SessionEnv {
  std::shared_ptr<const config::Config> config;
  spool::Spool* spool = nullptr;
  // After a message is durable, before its 250. May be empty.
  std::function<void(const spool::Envelope&)> on_queued;
  // The server's stop request; may be null (tests).
  ShutdownSignal* shutdown = nullptr;
  // The listener the client came in on (its TLS and AUTH settings).
  config::Listener listener;
  // The server certificate for STARTTLS and implicit TLS; null when none is configured (then
  // STARTTLS is not offered and an implicit-TLS listener closes every connection).
  std::shared_ptr<tls::ServerContextHolder> tls;
  // The users for AUTH; null when auth.users_file is not set (then AUTH is not offered).
  std::shared_ptr<Authenticator> auth;
};

// Runs the session to its end and closes the socket. Never throws for network errors or client
// behaviour. Spawn it on a strand when the io_context runs several threads: everything the
// session does stays on the socket's executor.
boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, SessionEnv env);

}  // namespace mailhop::server
