// One SMTP client connection to the next hop (RFC 5321 as a client), driven by coroutines:
//
//   connect()  TCP to relay.host:port, or relay.fallback in order when the primary cannot be
//              reached or answers 4xx at greeting/EHLO; greeting; EHLO (HELO on 5xx);
//              STARTTLS per relay.tls (EHLO again after it); AUTH when relay.username is set.
//   send()     one transaction: MAIL (SIZE=, BODY=8BITMIME, SMTPUTF8 as needed), RCPTs and
//              DATA pipelined when offered (RFC 2920), content streamed through a DotStuffer;
//              one result per recipient.
//   reset()    readies a reused connection for the next transaction: RSET only when the last
//              one stopped before its data's reply, or the server spoke or closed meanwhile.
//   quit()     QUIT and close.
//
// Every read and write has the RFC 5321 §4.5.3.2 deadline from relay.timeouts; a deadline is
// set per command and not extended by a trickle of bytes. Network errors, timeouts, TLS and
// AUTH failures are values (a deferral with a reason), never exceptions.
//
// SECURITY: the next hop's replies are untrusted: lines are bounded, replies parsed strictly.
// Credentials are sent only over TLS unless relay.tls is `none`, and never logged.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/delivery/outcome.hpp"
#include "mailhop/smtp/extensions.hpp"

namespace boost::asio::ssl {
class context;
}

namespace mailhop::delivery {

// Reads message content: up to `max` bytes from `offset`; an empty string at the end. The client
// stops asking once it has OutgoingMessage::size bytes.
using ContentReader =
    std::function<boost::asio::awaitable<std::pair<std::error_code, std::string>>(std::uint64_t offset, std::size_t max)>;

struct OutgoingMessage {
  std::string sender;                  // "" for the null sender
  std::vector<std::string> recipients; // those still pending
  std::uint64_t size = 0;
  bool eight_bit = false;
  bool smtputf8 = false;
  ContentReader content;
};

struct ConnectResult {
  bool ok = false;
  RecipientResult failure;  // when !ok: always deferred, with the reason ("TLS required but …")
};

class RelayClient {
 public:
  // `tls` may be null when relay.tls is `none`.
  RelayClient(boost::asio::any_io_executor ex, std::shared_ptr<const config::Config> config,
              std::shared_ptr<boost::asio::ssl::context> tls);
  ~RelayClient();
  RelayClient(const RelayClient&) = delete;
  RelayClient& operator=(const RelayClient&) = delete;

  boost::asio::awaitable<ConnectResult> connect();
  // One result per message.recipients entry, in order.
  boost::asio::awaitable<std::vector<RecipientResult>> send(const OutgoingMessage& message);
  // Ready for the next transaction (RSET when needed, see above); false when the connection is
  // no longer usable (then open a new one).
  boost::asio::awaitable<bool> reset();
  boost::asio::awaitable<void> quit();
  // Closes the socket at once, without QUIT.
  void close();
  // Shutdown: closes the socket at once and makes the operation in progress (resolve, connect,
  // greeting, a transaction) end now, failing with `reason`; no fallback is tried after it.
  void abort(std::string reason);

  // true while connected and in step with the server.
  bool usable() const;
  // "host[ip]:port" of the current (or last tried) next hop, for log lines; "none" before any.
  const std::string& relay_name() const;
  // The next hop's host name as configured (for a DSN's Remote-MTA).
  const std::string& relay_host() const;
  const smtp::Capabilities& capabilities() const;
  bool tls_active() const;
  // Transactions completed on this connection.
  unsigned transactions() const;
  // Expires when this client is destroyed: lets an owner of many (the pool) keep a list of
  // them without owning them.
  std::weak_ptr<const void> lifetime() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const int> alive_ = std::make_shared<const int>(0);
};

}  // namespace mailhop::delivery
