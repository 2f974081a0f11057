// The SMTP client connection to the next hop (see mailhop/delivery/relay_client.hpp).
//
// SECURITY: what the next hop sends is untrusted: reply lines are bounded by the LineBuffer,
// replies parsed by smtp::ReplyParser, and a reply that does not parse drops the connection.
// After STARTTLS anything the server sent ahead of the handshake is discarded. The password is
// read when it is needed, sent base64-encoded inside TLS (or in the clear only with `tls: none`)
// and appears in no log line or error text. The same holds for OAuth2 access tokens.
//
// Note: `co_return co_await f();` is written as two statements throughout: GCC 12 miscompiled
// the one-statement form here (the coroutine ran off its end: SIGILL).
#include "mailhop/delivery/relay_client.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mailhop/delivery/auth.hpp"
#include "mailhop/delivery/token_provider.hpp"
#include "mailhop/smtp/address.hpp"
#include "mailhop/smtp/dot_codec.hpp"
#include "mailhop/smtp/line_buffer.hpp"
#include "mailhop/smtp/reply.hpp"
#include "mailhop/tls/client.hpp"
#include "mailhop/util/base64.hpp"
#include "mailhop/util/race.hpp"
#include "mailhop/util/units.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using config::Duration;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxReplyLine = 4096;    // RFC 5321 §4.5.3.1.5 says 512; be lenient
constexpr std::size_t kContentChunk = 64 * 1024;

// A deferral at connection level: 5.x.x replies there are about this connection, never about
// the recipients, so they defer too (a refused login must not bounce anyone's mail).
RecipientResult defer(std::string dsn, std::string reason) {
  if (!dsn.empty() && dsn[0] != '4') dsn[0] = '4';
  return local_result(Outcome::deferred, std::move(dsn), std::move(reason));
}

}  // namespace

struct RelayClient::Impl {
  asio::any_io_executor ex;
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<ssl::context> tls_context;

  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;  // set once STARTTLS / implicit TLS began
  bool tls_active = false;
  bool in_step = false;  // connected and every command answered
  // MAIL was accepted and the transaction has not reached the reply to its data: the next one
  // needs an RSET first (RFC 5321 §4.1.1.5).
  bool transaction_open = false;
  smtp::LineBuffer lines{kMaxReplyLine};
  smtp::ReplyParser parser;
  std::array<char, 16 * 1024> read_buffer{};
  smtp::Capabilities caps;
  std::string name = "none";  // host[ip]:port
  std::string host;           // as configured
  std::string host_port;      // host:port
  std::uint16_t port = 0;
  bool retry_with_fresh_token = false;  // the next hop refused a cached token and hung up
  std::string error;          // why the last I/O step failed
  std::string aborted;        // abort()'s reason: every later failure says this
  tcp::resolver* resolving = nullptr;  // while a name is resolved, so that abort() can cancel it
  unsigned transactions = 0;

  Impl(asio::any_io_executor e, std::shared_ptr<const config::Config> c, std::shared_ptr<ssl::context> t)
      : ex(e), config(std::move(c)), tls_context(std::move(t)), socket(e) {}

  const config::RelayTimeouts& timeouts() const { return config->relay.timeouts; }

  // An I/O failure's description, unless the connection was aborted: then the abort's reason.
  std::string failure(std::string what) const { return aborted.empty() ? std::move(what) : aborted; }

  void close() {
    in_step = false;
    tls_active = false;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  // Nothing unread: no buffered reply bytes, and the socket has neither data nor EOF waiting.
  bool quiet() {
    if (!lines.pending().empty()) return false;
    char byte;
    ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  // ---- timed I/O: every operation races a timer (TOOLCHAIN.md pitfall 1: as_tuple both) ----

  awaitable<bool> write(std::string_view data, Duration timeout, std::string_view what) {
    asio::steady_timer timer(ex);
    timer.expires_after(timeout);
    std::variant<std::tuple<boost::system::error_code, std::size_t>, std::tuple<boost::system::error_code>> r;
    if (tls_active)
      r = co_await util::race(asio::async_write(*tls, asio::buffer(data), asio::deferred), timer);
    else
      r = co_await util::race(asio::async_write(socket, asio::buffer(data), asio::deferred), timer);
    if (r.index() == 1) {
      error = fmt::format("timed out after {} sending {} to {}", util::format_duration(timeout), what, name);
      close();
      co_return false;
    }
    if (auto ec = std::get<0>(std::get<0>(r))) {
      error = failure(fmt::format("lost connection with {} while sending {}: {}", name, what, ec.message()));
      close();
      co_return false;
    }
    co_return true;
  }

  awaitable<bool> command(std::string line, Duration timeout, std::string_view what) {
    line += "\r\n";
    auto value = co_await write(line, timeout, what);
    co_return value;
  }

  // One whole reply; the deadline covers all of it (bytes trickling in do not extend it).
  awaitable<std::optional<smtp::Reply>> read_reply(Duration timeout, std::string_view what) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (auto line = lines.pop_line()) {
        if (line->too_long) {
          error = fmt::format("{} sent a reply line longer than {} bytes after {}", name, kMaxReplyLine, what);
          close();
          co_return std::nullopt;
        }
        auto status = parser.feed_line(line->text);
        if (status == smtp::ReplyParser::Status::complete) co_return parser.take();
        if (status == smtp::ReplyParser::Status::error) {
          error = fmt::format("{} sent a malformed reply to {}: {}", name, what, parser.error());
          close();
          co_return std::nullopt;
        }
      }
      asio::steady_timer timer(ex);
      timer.expires_at(deadline);
      std::variant<std::tuple<boost::system::error_code, std::size_t>, std::tuple<boost::system::error_code>> r;
      if (tls_active)
        r = co_await util::race(tls->async_read_some(asio::buffer(read_buffer), asio::deferred), timer);
      else
        r = co_await util::race(socket.async_read_some(asio::buffer(read_buffer), asio::deferred), timer);
      if (r.index() == 1) {
        error = fmt::format("timed out after {} waiting for the reply to {} from {}", util::format_duration(timeout),
                            what, name);
        close();
        co_return std::nullopt;
      }
      auto [ec, n] = std::get<0>(r);
      if (ec) {
        error = failure(fmt::format("lost connection with {} while waiting for the reply to {}: {}", name, what,
                                    ec == asio::error::eof ? "connection closed" : ec.message()));
        close();
        co_return std::nullopt;
      }
      lines.append(std::string_view(read_buffer.data(), n));
    }
  }

  awaitable<std::optional<smtp::Reply>> exchange(std::string line, Duration timeout, std::string_view what) {
    if (!co_await command(std::move(line), timeout, what)) co_return std::nullopt;
    auto value = co_await read_reply(timeout, what);
    co_return value;
  }

  // ---- connection set-up ----

  awaitable<bool> handshake(const std::string& peer_host) {
    if (!tls_context) {
      error = "TLS is configured but no TLS client context was made";
      close();
      co_return false;
    }
    tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *tls_context);
    if (!tls::prepare_client_connection(tls->native_handle(), peer_host, config->relay.verify)) {
      error = fmt::format("cannot set up TLS for the name {}", peer_host);
      close();
      co_return false;
    }
    asio::steady_timer timer(ex);
    timer.expires_after(timeouts().command);
    auto r = co_await (tls->async_handshake(ssl::stream_base::client, use_tuple) || timer.async_wait(use_tuple));
    if (r.index() == 1) {
      error = fmt::format("TLS handshake with {} timed out after {}", host_port, util::format_duration(timeouts().command));
      close();
      co_return false;
    }
    if (auto ec = std::get<0>(std::get<0>(r))) {
      error = failure(fmt::format("{} (TLS with {})", tls::describe_handshake_error(tls->native_handle(), ec.message()), host_port));
      close();
      co_return false;
    }
    tls_active = true;
    lines.clear();  // nothing sent before the handshake may be taken as a reply (CVE-2011-0411 class)
    spdlog::debug("relay {}: TLS established ({}, {})", name, SSL_get_version(tls->native_handle()),
                  SSL_get_cipher_name(tls->native_handle()));
    co_return true;
  }

  // EHLO, or HELO when EHLO is refused with 5xx (RFC 5321 §4.1.4: a server that does not know
  // EHLO). nullopt with `error` set on a network failure; otherwise the final reply.
  awaitable<std::optional<smtp::Reply>> greet() {
    const std::string me = config->hostname.empty() ? std::string("localhost") : config->hostname;
    auto reply = co_await exchange("EHLO " + me, timeouts().command, "EHLO");
    if (!reply) co_return std::nullopt;
    if (reply->positive()) {
      caps = smtp::parse_ehlo_reply(*reply);
      co_return reply;
    }
    if (!reply->permanent()) co_return reply;
    caps = smtp::Capabilities{};
    auto value = co_await exchange("HELO " + me, timeouts().command, "HELO");
    co_return value;
  }

  awaitable<std::optional<RecipientResult>> authenticate() {
    const auto& relay = config->relay;
    const std::string& user = *relay.username;
    if (!tls_active && relay.tls != config::RelayTls::none)
      co_return defer("4.7.0", fmt::format("AUTH not attempted: the connection to {} is not encrypted (STARTTLS not "
                                           "offered); set relay.tls: none to allow plaintext credentials",
                                           host_port));
    auto choice = choose_mechanism(relay.auth, caps);
    if (!choice.mechanism) co_return defer("4.7.0", fmt::format("AUTH as {} not possible: {} ({})", user, choice.error, host_port));
    if (*choice.mechanism == AuthMechanism::xoauth2 || *choice.mechanism == AuthMechanism::oauthbearer) {
      auto failure = co_await authenticate_oauth(*choice.mechanism);
      co_return failure;
    }
    std::string why;
    auto password = read_password(relay, why);
    if (!password) co_return defer("4.7.0", "AUTH not attempted: " + why);

    std::optional<smtp::Reply> reply;
    if (*choice.mechanism == AuthMechanism::plain) {
      reply = co_await exchange(plain_command(user, *password), timeouts().command, "AUTH PLAIN");
    } else {
      reply = co_await exchange("AUTH LOGIN", timeouts().command, "AUTH LOGIN");
      if (reply && reply->code == 334) reply = co_await exchange(util::base64_encode(user), timeouts().command, "AUTH LOGIN");
      if (reply && reply->code == 334) reply = co_await exchange(util::base64_encode(*password), timeouts().command, "AUTH LOGIN");
    }
    if (!reply) co_return defer("4.4.2", error);
    if (reply->code == 235) {
      spdlog::debug("relay {}: authenticated as {}", name, user);
      co_return std::nullopt;
    }
    if (reply->code == 334) {  // the server wants more than PLAIN/LOGIN take: cancel (RFC 4954 §4)
      co_await exchange("*", timeouts().command, "AUTH cancel");
    }
    auto reason = fmt::format("authentication failed as {} at {}: {}", user, host_port, reply->to_string());
    spdlog::error("relay {}: {}", name, reason);
    std::string dsn = reply->enhanced().empty() ? "4.7.8" : reply->enhanced();
    co_return defer(dsn, reason);
  }

  // SASL XOAUTH2 / OAUTHBEARER with a token from the shared provider. A refusal of a cached
  // token (535, or the 334 error challenge) drops it and tries once more with a fresh one at
  // once: on this connection when the server keeps it open, else on a new one (connect()).
  // A token that cannot be had defers, naming why; it never bounces.
  awaitable<std::optional<RecipientResult>> authenticate_oauth(AuthMechanism mechanism) {
    const auto& relay = config->relay;
    const std::string& user = *relay.username;
    const std::string what = mechanism == AuthMechanism::xoauth2 ? "AUTH XOAUTH2" : "AUTH OAUTHBEARER";
    auto provider = TokenProvider::shared(relay);
    for (int attempt = 0;; ++attempt) {
      auto token = co_await provider->token();
      if (!token.token)
        co_return defer("4.7.0", fmt::format("{} as {} not attempted: no OAuth2 access token: {}", what, user, token.error));
      const auto initial = mechanism == AuthMechanism::xoauth2 ? xoauth2_response(user, *token.token)
                                                               : oauthbearer_response(user, host, port, *token.token);
      auto reply = co_await exchange(oauth_command(mechanism, initial), timeouts().command, what);
      if (!reply) co_return defer("4.4.2", error);
      if (reply->code == 235) {
        spdlog::debug("relay {}: authenticated as {} ({})", name, user, what);
        co_return std::nullopt;
      }
      std::string challenge;
      if (reply->code == 334) {
        // The error challenge: base64 JSON such as {"status":"401","schemes":"Bearer",...}.
        // It is answered with an empty line (XOAUTH2) or ^A (RFC 7628 §3.2.3); a 535 follows.
        std::string text = reply->lines.empty() ? std::string() : reply->lines.front();
        if (auto decoded = util::base64_decode(text)) {
          for (char c : *decoded)
            if (challenge.size() < 200) challenge += (c >= 0x20 && c < 0x7f) ? c : ' ';
        }
        reply = co_await exchange(oauth_error_ack(mechanism), timeouts().command, what);
        if (!reply) {
          if (token.cached && attempt == 0) {
            provider->invalidate(*token.token);
            retry_with_fresh_token = true;
          }
          co_return defer("4.4.2", error);
        }
      }
      const bool refused = reply->code == 535 || !challenge.empty();
      auto reason = fmt::format("authentication failed as {} at {} ({}): {}{}", user, host_port, what, reply->to_string(),
                                challenge.empty() ? "" : " (" + challenge + ")");
      if (refused && token.cached && attempt == 0) {
        provider->invalidate(*token.token);
        spdlog::info("relay {}: the cached OAuth2 access token was refused; getting a new one", name);
        if (in_step) continue;
        retry_with_fresh_token = true;
        co_return defer("4.7.8", reason);
      }
      spdlog::error("relay {}: {}", name, reason);
      std::string dsn = reply->enhanced().empty() ? "4.7.8" : reply->enhanced();
      co_return defer(dsn, reason);
    }
  }

  // One endpoint: connect, greeting, EHLO, TLS, AUTH. `next` is set when a fallback should be
  // tried (unreachable, or 4xx at greeting/EHLO).
  awaitable<ConnectResult> try_endpoint(const config::Endpoint& ep, bool& next) {
    next = false;
    close();
    tls.reset();
    lines.clear();
    parser = smtp::ReplyParser{};
    caps = smtp::Capabilities{};
    host = ep.host;
    host_port = fmt::format("{}:{}", ep.host, ep.port);
    port = ep.port;
    name = fmt::format("{}[?]:{}", ep.host, ep.port);
    const auto& relay = config->relay;

    // Resolve and connect within the connect timeout.
    if (!aborted.empty()) co_return ConnectResult{false, defer("4.3.2", aborted)};
    tcp::resolver resolver(ex);
    asio::steady_timer timer(ex);
    timer.expires_after(timeouts().connect);
    resolving = &resolver;
    auto resolved = co_await (resolver.async_resolve(ep.host, std::to_string(ep.port), use_tuple) || timer.async_wait(use_tuple));
    resolving = nullptr;
    if (!aborted.empty()) co_return ConnectResult{false, defer("4.3.2", aborted)};
    if (resolved.index() == 1) {
      next = true;
      co_return ConnectResult{false, defer("4.4.3", fmt::format("timed out resolving {}", ep.host))};
    }
    auto [rec, results] = std::get<0>(resolved);
    if (rec) {
      next = true;
      co_return ConnectResult{false, defer("4.4.3", fmt::format("cannot resolve {}: {}", ep.host, rec.message()))};
    }
    if (!results.empty()) name = fmt::format("{}[{}]:{}", ep.host, results.begin()->endpoint().address().to_string(), ep.port);
    auto connected = co_await (asio::async_connect(socket, results, use_tuple) || timer.async_wait(use_tuple));
    if (connected.index() == 1) {
      close();
      next = true;
      co_return ConnectResult{
          false, defer("4.4.1", fmt::format("connect to {} timed out after {}", host_port, util::format_duration(timeouts().connect)))};
    }
    auto [cec, peer] = std::get<0>(connected);
    if (cec) {
      close();
      next = true;
      co_return ConnectResult{false, defer("4.4.1", failure(fmt::format("connect to {}: {}", host_port, cec.message())))};
    }
    name = fmt::format("{}[{}]:{}", ep.host, peer.address().to_string(), ep.port);
    in_step = true;
    // Each command group and the message's last block go out as one write, so Nagle's
    // algorithm only delays them: a small write after the content waited for the peer's
    // delayed ACK (40 ms a message on Linux).
    boost::system::error_code nodelay_error;  // only a cost if it fails
    socket.set_option(tcp::no_delay(true), nodelay_error);

    if (relay.tls == config::RelayTls::implicit) {
      const bool secured = co_await handshake(ep.host);
      if (!secured) co_return ConnectResult{false, defer("4.7.5", error)};
    }

    auto greeting = co_await read_reply(timeouts().greeting, "the greeting");
    if (!greeting) {
      next = true;
      co_return ConnectResult{false, defer("4.4.2", error)};
    }
    if (greeting->code != 220) {
      next = true;  // a refusal at the greeting is about this host: another may take the mail
      auto reason = fmt::format("{} refused the connection: {}", host_port, greeting->to_string());
      co_await quit_quietly();
      co_return ConnectResult{false, defer(greeting->enhanced().empty() ? "4.4.0" : greeting->enhanced(), reason)};
    }

    auto hello = co_await greet();
    if (!hello) co_return ConnectResult{false, defer("4.4.2", error)};
    if (!hello->positive()) {
      next = hello->transient();
      auto reason = fmt::format("{} refused EHLO/HELO: {}", host_port, hello->to_string());
      co_await quit_quietly();
      co_return ConnectResult{false, defer(hello->enhanced().empty() ? "4.4.0" : hello->enhanced(), reason)};
    }

    if (relay.tls == config::RelayTls::starttls || relay.tls == config::RelayTls::opportunistic) {
      const bool required = relay.tls == config::RelayTls::starttls;
      if (caps.starttls) {
        auto reply = co_await exchange("STARTTLS", timeouts().command, "STARTTLS");
        if (!reply) co_return ConnectResult{false, defer("4.4.2", error)};
        if (reply->code == 220) {
          if (!co_await handshake(ep.host)) co_return ConnectResult{false, defer("4.7.5", error)};
          auto again = co_await greet();  // RFC 3207 §4.2: forget what was learnt before TLS
          if (!again) co_return ConnectResult{false, defer("4.4.2", error)};
          if (!again->positive()) {
            auto reason = fmt::format("{} refused EHLO after STARTTLS: {}", host_port, again->to_string());
            co_await quit_quietly();
            co_return ConnectResult{false, defer("4.4.0", reason)};
          }
        } else if (required) {
          auto reason = fmt::format("TLS required but STARTTLS refused by {}: {}", host_port, reply->to_string());
          co_await quit_quietly();
          co_return ConnectResult{false, defer("4.7.4", reason)};
        }
      } else if (required) {
        auto reason = fmt::format("TLS required but not offered by {}", host_port);
        co_await quit_quietly();
        co_return ConnectResult{false, defer("4.7.4", reason)};
      }
    }

    if (relay.username) {
      if (auto failure = co_await authenticate()) {
        co_await quit_quietly();
        co_return ConnectResult{false, *failure};
      }
    }
    spdlog::debug("relay {}: ready{}", name, tls_active ? " (TLS)" : "");
    co_return ConnectResult{true, {}};
  }

  awaitable<void> quit_quietly() {
    if (in_step) {
      co_await exchange("QUIT", std::min<Duration>(timeouts().command, std::chrono::seconds(10)), "QUIT");
    }
    close();
  }

  // ---- one transaction ----

  awaitable<std::vector<RecipientResult>> send(const OutgoingMessage& m) {
    const std::size_t n = m.recipients.size();
    std::vector<std::optional<RecipientResult>> results(n);
    auto finish = [&](const RecipientResult& fallback) {
      std::vector<RecipientResult> out;
      out.reserve(n);
      for (auto& r : results) out.push_back(r ? *r : fallback);
      return out;
    };

    if (!in_step) co_return finish(defer("4.4.2", fmt::format("connection to {} not usable", name)));

    // RFC 1870 §6: a message larger than the server's limit is refused before sending it.
    if (caps.size && caps.max_size > 0 && m.size > caps.max_size)
      co_return finish(local_result(
          Outcome::failed, "5.3.4",
          fmt::format("Message too big for {}: {} bytes, it accepts at most {}", host_port, m.size, caps.max_size)));

    // RFC 6531 §3.2: a message that needs SMTPUTF8 cannot go to a server without it. An ASCII
    // recipient of a message from an ASCII sender can still be delivered.
    std::vector<std::size_t> order;
    const bool utf8 = m.smtputf8 && caps.smtputf8;
    for (std::size_t i = 0; i < n; ++i) {
      if (m.smtputf8 && !caps.smtputf8 && (smtp::has_non_ascii(m.sender) || smtp::has_non_ascii(m.recipients[i]))) {
        results[i] = local_result(Outcome::failed, "5.6.7",
                                  fmt::format("SMTPUTF8 is required for this address but not offered by {}", host_port));
      } else {
        order.push_back(i);
      }
    }
    if (order.empty()) co_return finish(defer("4.0.0", ""));

    std::string mail = fmt::format("MAIL FROM:<{}>", m.sender);
    if (caps.size) mail += fmt::format(" SIZE={}", m.size);
    if (m.eight_bit && caps.eight_bit_mime) mail += " BODY=8BITMIME";
    if (utf8) mail += " SMTPUTF8";

    const auto t = timeouts();
    std::vector<std::size_t> accepted;
    std::optional<smtp::Reply> data_reply;
    bool mail_ok = false;
    // A network failure leaves every recipient without a result deferred, naming the cause.
    auto lost = [&] { return finish(defer("4.4.2", error)); };

    if (caps.pipelining) {  // RFC 2920 §3.1: MAIL, RCPTs and DATA in one group
      std::string group = mail + "\r\n";
      for (auto i : order) group += fmt::format("RCPT TO:<{}>\r\n", m.recipients[i]);
      group += "DATA\r\n";
      if (!co_await write(group, t.command, "MAIL FROM")) co_return lost();
      auto mail_reply = co_await read_reply(t.command, "MAIL FROM");
      if (!mail_reply) co_return lost();
      mail_ok = mail_reply->positive();
      transaction_open = mail_ok;
      for (auto i : order) {
        auto reply = co_await read_reply(t.command, "RCPT TO");
        if (!reply) co_return lost();
        if (!mail_ok) {
          results[i] = classify(*mail_reply);
        } else if (reply->positive()) {
          accepted.push_back(i);
        } else {
          results[i] = classify(*reply);
        }
      }
      data_reply = co_await read_reply(t.data_init, "DATA");
      if (!data_reply) co_return lost();
      if (data_reply->code == 354 && accepted.empty()) {
        // The server took DATA without a recipient: end it empty (RFC 2920 §3.1).
        if (!co_await write(".\r\n", t.data_end, "end of data")) co_return lost();
        if (!co_await read_reply(t.data_end, "end of data")) co_return lost();
        transaction_open = false;
        ++transactions;
        co_return finish(defer("4.0.0", ""));
      }
    } else {
      auto mail_reply = co_await exchange(mail, t.command, "MAIL FROM");
      if (!mail_reply) co_return lost();
      mail_ok = mail_reply->positive();
      transaction_open = mail_ok;
      if (!mail_ok) {
        for (auto i : order) results[i] = classify(*mail_reply);
        ++transactions;
        co_return finish(defer("4.0.0", ""));
      }
      for (auto i : order) {
        auto reply = co_await exchange(fmt::format("RCPT TO:<{}>", m.recipients[i]), t.command, "RCPT TO");
        if (!reply) co_return lost();
        if (reply->positive())
          accepted.push_back(i);
        else
          results[i] = classify(*reply);
      }
      if (accepted.empty()) {
        ++transactions;
        co_return finish(defer("4.0.0", ""));
      }
      data_reply = co_await exchange("DATA", t.data_init, "DATA");
      if (!data_reply) co_return lost();
    }

    ++transactions;
    if (!mail_ok || accepted.empty()) co_return finish(defer("4.0.0", ""));
    if (data_reply->code != 354) {
      for (auto i : accepted) results[i] = classify(*data_reply);
      co_return finish(defer("4.0.0", ""));
    }

    // The content, streamed from the spool and dot-stuffed on the way (RFC 5321 §4.5.2).
    smtp::DotStuffer stuffer;
    std::string out;
    std::uint64_t offset = 0;
    for (;;) {
      auto [ec, chunk] = co_await m.content(offset, kContentChunk);
      if (ec) {
        // The data cannot be ended cleanly without sending a truncated message: drop the
        // connection, which makes the server discard the transaction.
        error = fmt::format("cannot read the queued content: {}", ec.message());
        close();
        co_return lost();
      }
      // The last block and the end-of-data line go out in one write, and once the message's
      // size is reached the spool is not asked for the empty chunk that would say so.
      offset += chunk.size();
      const bool last = chunk.empty() || offset >= m.size;
      out.clear();
      stuffer.encode(chunk, out);
      if (last) stuffer.finish(out);
      if (!co_await write(out, t.data_block, last ? "end of data" : "message content")) co_return lost();
      if (last) break;
    }
    auto final_reply = co_await read_reply(t.data_end, "end of data");
    if (!final_reply) co_return lost();
    transaction_open = false;  // whatever the reply, the transaction is over (RFC 5321 §4.1.1.4)
    for (auto i : accepted) results[i] = classify(*final_reply);  // the DATA reply covers them all
    co_return finish(defer("4.0.0", ""));
  }
};

RelayClient::RelayClient(asio::any_io_executor ex, std::shared_ptr<const config::Config> config,
                         std::shared_ptr<ssl::context> tls)
    : impl_(std::make_unique<Impl>(ex, std::move(config), std::move(tls))) {}

RelayClient::~RelayClient() = default;

awaitable<ConnectResult> RelayClient::connect() {
  const auto& relay = impl_->config->relay;
  std::vector<config::Endpoint> hops{config::Endpoint{relay.host, relay.port}};
  hops.insert(hops.end(), relay.fallback.begin(), relay.fallback.end());
  ConnectResult result;
  for (std::size_t i = 0; i < hops.size() && impl_->aborted.empty(); ++i) {
    bool next = false;
    impl_->retry_with_fresh_token = false;
    result = co_await impl_->try_endpoint(hops[i], next);
    if (!result.ok && impl_->retry_with_fresh_token) {  // a revoked token, and the server hung up
      impl_->retry_with_fresh_token = false;
      result = co_await impl_->try_endpoint(hops[i], next);
    }
    if (result.ok || !next || !impl_->aborted.empty()) co_return result;
    if (i + 1 < hops.size())
      spdlog::warn("relay {}: {}; trying {}:{}", impl_->name, result.failure.text, hops[i + 1].host, hops[i + 1].port);
  }
  co_return result;
}

awaitable<std::vector<RecipientResult>> RelayClient::send(const OutgoingMessage& message) {
  auto value = co_await impl_->send(message);
  co_return value;
}

awaitable<bool> RelayClient::reset() {
  if (!impl_->in_step) co_return false;
  // After a finished transaction the server is ready for the next MAIL: RSET would only cost a
  // round trip per message. It is still sent after a transaction that stopped early, and when
  // the server has said something since (a 421 before closing) or closed the connection.
  if (!impl_->transaction_open && impl_->quiet()) co_return true;
  auto reply = co_await impl_->exchange("RSET", impl_->timeouts().command, "RSET");
  if (!reply || !reply->positive()) {
    impl_->close();
    co_return false;
  }
  co_return true;
}

awaitable<void> RelayClient::quit() { co_await impl_->quit_quietly(); }

void RelayClient::close() { impl_->close(); }

void RelayClient::abort(std::string reason) {
  impl_->aborted = std::move(reason);
  impl_->error = impl_->aborted;
  if (impl_->resolving) impl_->resolving->cancel();
  impl_->close();  // the pending read, write, connect or handshake completes with operation_aborted
}
bool RelayClient::usable() const { return impl_->in_step; }
const std::string& RelayClient::relay_name() const { return impl_->name; }
const std::string& RelayClient::relay_host() const { return impl_->host; }
const smtp::Capabilities& RelayClient::capabilities() const { return impl_->caps; }
bool RelayClient::tls_active() const { return impl_->tls_active; }
unsigned RelayClient::transactions() const { return impl_->transactions; }
std::weak_ptr<const void> RelayClient::lifetime() const { return alive_; }

}  // namespace mailhop::delivery
