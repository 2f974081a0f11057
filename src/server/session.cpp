// The session loop: greeting, then read a line, dispatch it, repeat; with the per-command and
// whole-session deadlines and the reply buffering of pipelining (RFC 2920).
//
// TLS (RFC 3207 STARTTLS, RFC 8314 implicit) slots in here: once tls_ exists every read and
// write goes through it. On a proxy_protocol listener the PROXY header comes first of all,
// before the greeting and before an implicit-TLS handshake.
//
// SECURITY: a deadline is fixed when the wait for a command starts and is not moved by bytes
// trickling in (Postfix: "never extend the time budget mid-command"); the whole session has
// one more that nothing extends. Input per command is bounded by the line buffer, pending
// replies by kMaxPendingReplies. After STARTTLS, bytes that came before the handshake are
// dropped, never executed (CVE-2011-0411), and the session starts over.
#include <algorithm>
#include <tuple>
#include <variant>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/server/policy.hpp"
#include "mailhop/util/metrics.hpp"
#include "mailhop/util/race.hpp"
#include "proxy_header.hpp"
#include "session_impl.hpp"

namespace mailhop::server {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// RFC 5321 §4.5.3.1.4 asks for 512 bytes at least; Postfix allows 2048 (line_length_limit).
constexpr std::size_t kMaxCommandLine = 2048;
// A client that pipelines without reading gets its replies written once this much is pending.
constexpr std::size_t kMaxPendingReplies = 16 * 1024;
// Time to write a last reply (421, 221) before closing, even when a deadline has passed.
constexpr auto kFarewellTime = std::chrono::seconds(5);
// How long a closing session waits for the client to close its side.
constexpr auto kLingerTime = std::chrono::seconds(2);

}  // namespace

struct Session::TlsLayer {
  TlsLayer(asio::ip::tcp::socket& socket, std::shared_ptr<asio::ssl::context> c)
      : context(std::move(c)), stream(socket, *context) {}
  // The context of this connection's handshake: a reload swaps the holder's, not this one.
  std::shared_ptr<asio::ssl::context> context;
  asio::ssl::stream<asio::ip::tcp::socket&> stream;
};

asio::awaitable<void> run_session(asio::ip::tcp::socket socket, SessionEnv env) {
  Session session(std::move(socket), std::move(env));
  co_await session.run();
}

Session::Session(asio::ip::tcp::socket socket, SessionEnv env)
    : socket_(std::move(socket)),
      env_(std::move(env)),
      config_(*env_.config),
      alarm_(std::make_shared<Alarm>(socket_.get_executor())),
      lines_(kMaxCommandLine),
      read_buffer_(kCommandReadSize) {
  boost::system::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  client_address_ = ec ? asio::ip::address() : canonical_address(remote.address());
  client_ip_ = ec ? std::string("unknown") : client_address_.to_string();
}

Session::~Session() = default;

asio::awaitable<void> Session::run() {
  session_deadline_ = Clock::now() + config_.limits.session_timeout;
  if (env_.shutdown) {
    // The callback may run on any thread: it only posts to this session's executor.
    stop_subscription_ = env_.shutdown->subscribe([weak = std::weak_ptr<Alarm>(alarm_), ex = socket_.get_executor()] {
      asio::post(ex, [weak] {
        if (auto alarm = weak.lock(); alarm && alarm->interruptible) alarm->timer.cancel();
      });
    });
  }
  if (env_.listener.proxy_protocol) {
    // No greeting, no reply at all on a refusal: the peer is a proxy, not an SMTP client, and
    // a failed header means nobody can say who the client is (haproxy's proxy-protocol.txt).
    if (!co_await accept_proxy_header()) {
      co_await close();
      co_return;
    }
  } else {
    spdlog::info("connect from unknown[{}]", client_ip_);
  }

  // RFC 8314 §3.3: on an implicit-TLS port the handshake comes before the greeting.
  if (env_.listener.tls == config::ListenerTls::implicit && !co_await handshake()) {
    co_await close();
    spdlog::info("disconnect from {} commands=0 messages=0", client_label());
    co_return;
  }
  reply({220, "", config_.hostname + " ESMTP mailhop"});
  for (;;) {
    auto [line, end] = co_await next_line();
    if (!line) {
      reply_for_end(end, stage());
      break;
    }
    ++commands_;
    Next next;
    if (line->too_long) {
      last_command_ = "UNKNOWN";
      reply({500, "5.5.6", "Line too long: the limit is " + std::to_string(kMaxCommandLine) + " bytes"});
      next = Next::proceed;
    } else {
      auto command = smtp::parse_command(line->text);
      last_command_ = command.verb == smtp::Verb::unknown || command.verb == smtp::Verb::http ? "UNKNOWN" : command.name;
      next = dispatch(command);
    }
    if (next == Next::receive_data) next = co_await receive_data();
    if (next == Next::start_tls) next = co_await start_tls();
    if (next == Next::authenticate) next = co_await authenticate();
    if (next == Next::close) break;
    if (config_.limits.max_errors != 0 && errors_ >= config_.limits.max_errors) {
      spdlog::warn("too many errors after {} from {}", stage(), client_label());
      reply({421, "4.7.0", config_.hostname + " Too many errors, closing connection"});
      break;
    }
  }
  co_await close();
  spdlog::info("disconnect from {} commands={} messages={}", client_label(), commands_, messages_);
}

asio::awaitable<bool> Session::accept_proxy_header() {
  const std::string proxy_ip = client_ip_;
  if (!is_trusted_proxy(config_, client_address_)) {
    spdlog::warn("PROXY protocol: connection from [{}] refused without a greeting: not in trusted_proxies", proxy_ip);
    co_return false;
  }
  if (env_.shutdown && env_.shutdown->requested()) co_return false;
  const auto deadline = std::min(Clock::now() + config_.limits.command_timeout, session_deadline_);
  alarm_->interruptible = true;  // a stop request ends the wait: no client is served yet
  auto read = co_await read_proxy_header(socket_, alarm_->timer, deadline, env_.shutdown);
  alarm_->interruptible = false;
  using Outcome = ProxyHeaderRead::Outcome;
  switch (read.outcome) {
    case Outcome::accepted:
      break;
    case Outcome::invalid:
      spdlog::warn("PROXY protocol: invalid header from [{}], closed without a greeting: {}", proxy_ip,
                   read.header.error);
      co_return false;
    case Outcome::timeout:
      spdlog::warn("PROXY protocol: no complete header from [{}] before the deadline ({} bytes of it), closed without a greeting",
                   proxy_ip, read.bytes);
      co_return false;
    case Outcome::closed:
      spdlog::info("PROXY protocol: [{}] closed the connection before a complete header ({} bytes)", proxy_ip,
                   read.bytes);
      co_return false;
    case Outcome::cancelled:
      co_return false;  // shutting down: nobody to greet
  }
  if (!read.header.source) {
    // v1 UNKNOWN, v2 LOCAL (the balancer's health check), or a family mailhop does not route:
    // the proxy's own address stands (spec §2.1, §2.2).
    spdlog::info("connect from unknown[{}] (PROXY v{} {}: the proxy's own connection)", proxy_ip, read.header.version,
                 read.header.version == 1 ? "UNKNOWN" : "LOCAL or unspecified family");
    co_return true;
  }
  client_address_ = canonical_address(read.header.source->address);
  client_ip_ = client_address_.to_string();
  spdlog::info("connect from unknown[{}] via proxy [{}] (PROXY v{}, client port {})", client_ip_, proxy_ip,
               read.header.version, read.header.source->port);
  co_return true;
}

void Session::reply(const Response& response) {
  out_ += response.wire();
  if (response.code >= 500) ++errors_;
}

asio::awaitable<bool> Session::flush(Clock::time_point deadline) {
  if (out_.empty()) co_return true;
  alarm_->interruptible = false;
  alarm_->timer.expires_at(deadline);
  if (tls_broken_) {
    out_.clear();
    co_return false;
  }
  // (if/else, not ?:, around co_await: GCC 12 has miscompiled awaits in expressions)
  std::variant<std::tuple<boost::system::error_code, std::size_t>, std::tuple<boost::system::error_code>> result;
  if (tls_) {
    result = co_await util::race(asio::async_write(tls_->stream, asio::buffer(out_), asio::deferred), alarm_->timer);
  } else {
    result = co_await util::race(asio::async_write(socket_, asio::buffer(out_), asio::deferred), alarm_->timer);
  }
  out_.clear();
  if (result.index() != 0) co_return false;  // the deadline passed: the client does not read
  auto [ec, n] = std::get<0>(result);
  co_return !ec;
}

asio::awaitable<Session::Wait> Session::read_more(Clock::time_point deadline, bool interruptible) {
  deadline = std::min(deadline, session_deadline_);
  for (;;) {
    if (interruptible && env_.shutdown && env_.shutdown->requested()) co_return Wait::stopping;
    // Past the deadline, a client that keeps the input coming must not win the race below.
    if (Clock::now() >= deadline) co_return Wait::timeout;
    alarm_->interruptible = interruptible;
    alarm_->timer.expires_at(deadline);
    std::variant<std::tuple<boost::system::error_code, std::size_t>, std::tuple<boost::system::error_code>> result;
    if (tls_) {
      result = co_await util::race(tls_->stream.async_read_some(asio::buffer(read_buffer_), asio::deferred), alarm_->timer);
    } else {
      result = co_await util::race(socket_.async_read_some(asio::buffer(read_buffer_), asio::deferred), alarm_->timer);
    }
    alarm_->interruptible = false;
    if (result.index() == 0) {
      auto [ec, n] = std::get<0>(result);
      if (ec) co_return Wait::closed;
      lines_.append(std::string_view(read_buffer_.data(), n));
      co_return Wait::data;
    }
    auto [ec] = std::get<1>(result);
    if (!ec) co_return Wait::timeout;
    // Cancelled by a stop request: the check at the top decides (it is set before the cancel).
  }
}

asio::awaitable<Session::LineOrEnd> Session::next_line() {
  const auto deadline = std::min(Clock::now() + config_.limits.command_timeout, session_deadline_);
  if (out_.size() >= kMaxPendingReplies && !co_await flush(deadline)) co_return LineOrEnd{std::nullopt, Wait::closed};
  for (;;) {
    if (auto line = lines_.pop_line()) co_return LineOrEnd{std::move(line), Wait::data};
    // The input is drained: now the replies to the group go out, together (RFC 2920 §3.1).
    if (!co_await flush(deadline)) co_return LineOrEnd{std::nullopt, Clock::now() >= deadline ? Wait::timeout : Wait::closed};
    // Outside a transaction a stop request ends the wait; inside one the client may finish.
    const bool idle = state_ == State::init || state_ == State::ready;
    auto wait = co_await read_more(deadline, idle);
    if (wait != Wait::data) co_return LineOrEnd{std::nullopt, wait};
  }
}

asio::awaitable<Session::Next> Session::start_tls() {
  // The 220 goes out in plaintext, then whatever else the client sent before its handshake is
  // dropped: it came unprotected and must not run as if it had come over TLS (CVE-2011-0411).
  const auto deadline = std::min(Clock::now() + config_.limits.command_timeout, session_deadline_);
  if (!co_await flush(deadline)) {
    reply_for_end(Clock::now() >= deadline ? Wait::timeout : Wait::closed, "STARTTLS");
    co_return Next::close;
  }
  if (!lines_.pending().empty()) {
    spdlog::warn("{}: {} bytes sent after STARTTLS before the TLS handshake discarded", client_label(),
                 lines_.pending().size());
  }
  lines_.clear();
  if (!co_await handshake()) co_return Next::close;
  // RFC 3207 §4.2: forget everything learnt from the client before TLS; EHLO comes again.
  reset_transaction();
  state_ = State::init;
  helo_.clear();
  esmtp_ = false;
  auth_user_.clear();
  auth_method_.clear();
  co_return Next::proceed;
}

asio::awaitable<bool> Session::handshake() {
  std::shared_ptr<asio::ssl::context> context = env_.tls ? env_.tls->current() : nullptr;
  if (!context) {
    spdlog::error("no TLS certificate for the TLS connection from {}: set tls.cert_file and tls.key_file",
                  client_label());
    tls_broken_ = true;
    co_return false;
  }
  tls_ = std::make_unique<TlsLayer>(socket_, std::move(context));
  const auto deadline = std::min(Clock::now() + config_.limits.command_timeout, session_deadline_);
  alarm_->interruptible = false;
  alarm_->timer.expires_at(deadline);
  auto result = co_await (tls_->stream.async_handshake(asio::ssl::stream_base::server, use_tuple) ||
                          alarm_->timer.async_wait(use_tuple));
  if (result.index() != 0) {
    spdlog::info("TLS handshake timeout from {}", client_label());
    util::metrics::registry().tls_failures.inc("inbound_handshake");
    tls_broken_ = true;
    co_return false;
  }
  if (auto [ec] = std::get<0>(result); ec) {
    spdlog::info("TLS handshake failed from {}: {}", client_label(), ec.message());
    util::metrics::registry().tls_failures.inc("inbound_handshake");
    tls_broken_ = true;
    co_return false;
  }
  tls_info_ = tls::describe_connection(tls_->stream.native_handle());
  // Postfix's words, so log tools that know them keep working.
  spdlog::info("Anonymous TLS connection established from {}: {}", client_label(), tls_info_);
  co_return true;
}

void Session::reply_for_end(Wait why, std::string_view at) {
  switch (why) {
    case Wait::timeout:
      spdlog::info("timeout after {} from {}", at, client_label());
      reply({421, "4.4.2", config_.hostname + " Error: timeout exceeded, closing connection"});
      break;
    case Wait::stopping:
      reply({421, "4.3.2", config_.hostname + " Service shutting down, closing connection"});
      break;
    case Wait::closed:
    case Wait::data:
      spdlog::info("lost connection after {} from {}", at, client_label());
      break;
  }
}

asio::awaitable<void> Session::close() {
  if (socket_.is_open()) {
    const auto farewell = Clock::now() + kFarewellTime;
    boost::system::error_code ignored;
    if (tls_ && !tls_broken_ && co_await flush(farewell)) {
      // close_notify, then wait for the client's (or its close) for a short while: the TLS
      // form of the lingering close below.
      alarm_->timer.expires_at(std::min(farewell, Clock::now() + kLingerTime));
      co_await (tls_->stream.async_shutdown(use_tuple) || alarm_->timer.async_wait(use_tuple));
    } else if (!tls_ && co_await flush(farewell)) {
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      // Lingering close: input the client sent after its last command (an HTTP body, a
      // pipelined rest) would make the kernel answer our close with a reset, which can destroy
      // the last reply before the client reads it. So read and drop until the client closes,
      // for a short while.
      const auto linger_until = std::min(farewell, Clock::now() + kLingerTime);
      for (;;) {
        alarm_->timer.expires_at(linger_until);
        auto result = co_await (socket_.async_read_some(asio::buffer(read_buffer_), use_tuple) ||
                                alarm_->timer.async_wait(use_tuple));
        if (result.index() != 0) break;  // the client did not close in time
        auto [ec, n] = std::get<0>(result);
        if (ec) break;  // end of file: the client closed its side too
      }
    }
    socket_.close(ignored);
  }
  alarm_->timer.cancel();
  incoming_.reset();  // a message not committed leaves nothing in the queue
}

std::string Session::client_label() const {
  return (helo_.empty() ? std::string("unknown") : helo_) + "[" + client_ip_ + "]";
}

std::string_view Session::stage() const { return last_command_; }

}  // namespace mailhop::server
