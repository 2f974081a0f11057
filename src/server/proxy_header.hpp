// Reading the PROXY protocol header (smtp/proxy_protocol.hpp) off a freshly accepted socket,
// before the greeting and before any TLS handshake. Private to the server module.
//
// SECURITY: each read asks for at most the bytes the parser still needs, so not one byte of
// the SMTP or TLS stream that follows is taken; at most smtp::kProxyMaxHeader bytes in all,
// before one deadline that arriving bytes do not move. Whether the sender may send a header at all
// (trusted_proxies) is decided before this is called.
#pragma once

#include <chrono>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/server/shutdown.hpp"
#include "mailhop/smtp/proxy_protocol.hpp"

namespace mailhop::server {

struct ProxyHeaderRead {
  enum class Outcome {
    accepted,  // header.status is complete
    invalid,   // header.error says why
    timeout,   // the deadline passed first
    closed,    // the peer closed or the connection failed
    cancelled, // the timer was cancelled (a stop request)
  };
  Outcome outcome = Outcome::closed;
  smtp::ProxyParse header;
  std::size_t bytes = 0;  // received before the end, for the log
};

// Reads and parses the header, waiting on `timer` until `deadline`. A stop request (`shutdown`,
// may be null) ends the wait: it is checked before each read, and cancelling `timer` ends a read.
boost::asio::awaitable<ProxyHeaderRead> read_proxy_header(boost::asio::ip::tcp::socket& socket,
                                                          boost::asio::steady_timer& timer,
                                                          std::chrono::steady_clock::time_point deadline,
                                                          const ShutdownSignal* shutdown);

// Whether `peer` (the socket's address) may send a PROXY header: it is in trusted_proxies.
bool is_trusted_proxy(const config::Config& config, const boost::asio::ip::address& peer);

}  // namespace mailhop::server
