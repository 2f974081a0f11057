// A small pool of RelayClient connections to the next hop: at most delivery.max_connections
// open at once; a connection is reused for the next message (RSET first), closed with QUIT
// after relay.timeouts.idle unused, and on stop(). When a connect fails and none is open, the
// next hop counts as down for retry.initial (1 to 60 s): acquire() then answers at once with
// "delivery temporarily suspended: <why>" instead of every message waiting for its own timeout.
//
// Shutdown (stop()): the pool knows every connection it made. Those still connecting (or
// waiting for a greeting, or answering RSET) are aborted at once, idle ones get QUIT, and those
// in a transaction may finish it for delivery.shutdown_grace; then they are aborted too, so the
// daemon's stop is bounded however slow the next hop is (the worker records a deferral: the
// message stays queued).
//
// Reload (reconfigure()): new connections use the new configuration and TLS context; when the
// relay settings changed, idle connections (to the old next hop, perhaps) are closed.
//
// Threads: used only on the delivery strand.
#pragma once

#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/delivery/relay_client.hpp"

namespace mailhop::delivery {

struct Lease {
  std::unique_ptr<RelayClient> client;  // null when no connection could be made
  ConnectResult failure;                // why, when client is null
  std::string relay = "none";           // host[ip]:port tried last, for the log line
  bool stopping = false;                // no connection because the pool was stopped
};

// Counts a connect attempt to the next hop for /metrics (TLS and AUTH failures by cause) and
// records it as the last connection for /readyz. Called for every connect, pooled or probe.
void record_connect(const ConnectResult& result, const RelayClient& client);

class ConnectionPool {
 public:
  ConnectionPool(boost::asio::any_io_executor strand, std::shared_ptr<const config::Config> config,
                 std::shared_ptr<boost::asio::ssl::context> tls);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection ready for a transaction: an idle one that answered RSET, or a new one when
  // fewer than max_connections are open; otherwise waits for one to come back.
  boost::asio::awaitable<Lease> acquire();
  // Gives a connection back: kept idle when still usable, else its slot is freed.
  void release(std::unique_ptr<RelayClient> client);
  // No more connections: connecting ones are aborted and idle ones get QUIT now, leased ones
  // get QUIT when they come back, or are aborted after delivery.shutdown_grace.
  void stop();
  // The configuration and relay TLS context for connections opened from now on.
  void reconfigure(std::shared_ptr<const config::Config> config, std::shared_ptr<boost::asio::ssl::context> tls);

  // A probe of the next hop (connect, TLS, AUTH, QUIT) outside the pool's limit, recorded by
  // record_connect(); aborted like a pooled connection by stop().
  boost::asio::awaitable<ConnectResult> probe();

  std::size_t open() const;  // connections open or being opened
  std::size_t idle() const;
  // true once stopped and every connection it made is closed (QUIT answered or aborted).
  bool drained() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailhop::delivery
