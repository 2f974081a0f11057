// AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, as classic servers speak them:
// LOGIN's challenges are exactly "334 VXNlcm5hbWU6" and "334 UGFzc3dvcmQ6", success is
// "235 2.7.0 Authentication successful", failure "535 5.7.8 Authentication credentials invalid".
//
// SECURITY: offered and accepted only over TLS, or from 127.0.0.1 / ::1 (538 5.7.11
// otherwise), so a password never crosses a network in the clear. The password is never
// logged and is wiped once checked; the user name is logged only with its control characters
// replaced. Every failure waits longer than the one before (a timer, no thread blocked) and
// counts against limits.max_errors, so guessing is slow and ends the session.
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "mailhop/util/base64.hpp"
#include "mailhop/util/metrics.hpp"
#include "session_impl.hpp"

namespace mailhop::server {

namespace asio = boost::asio;

namespace {

// The first failure waits this long, each further one twice as long, up to kMaxFailureDelay.
constexpr auto kFirstFailureDelay = std::chrono::milliseconds(250);
constexpr auto kMaxFailureDelay = std::chrono::seconds(8);

// A client-chosen name made safe for one log line.
std::string loggable(std::string_view text) {
  std::string out(text.substr(0, 255));
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

void wipe(std::string& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

// The connections that may send a password without TLS: from 127.0.0.1 or ::1 only, the
// addresses a client on this host connects from. Other 127/8 addresses are treated as remote:
// test set-ups use them to stand for other machines, and nothing local picks them by default.
bool is_local_client(const boost::asio::ip::address& a) {
  return a == boost::asio::ip::address(boost::asio::ip::address_v4::loopback()) ||
         a == boost::asio::ip::address(boost::asio::ip::address_v6::loopback());
}

}  // namespace

bool Session::auth_offered() const {
  if (env_.listener.auth == config::ListenerAuth::none || !env_.auth) return false;
  return tls_ != nullptr || is_local_client(client_address_);
}

Session::Next Session::do_auth(const smtp::Command& command) {
  if (env_.listener.auth == config::ListenerAuth::none || !env_.auth) {
    reply({502, "5.5.1", "AUTH not available on this port"});
    return Next::proceed;
  }
  if (state_ == State::init) {
    reply({503, "5.5.1", "Bad sequence of commands: send HELO or EHLO first"});
    return Next::proceed;
  }
  if (!auth_user_.empty()) {  // RFC 4954 §4: one successful AUTH per session
    reply({503, "5.5.1", "Bad sequence of commands: already authenticated"});
    return Next::proceed;
  }
  if (state_ == State::mail || state_ == State::rcpt) {  // RFC 4954 §4: not during a transaction
    reply({503, "5.5.1", "Bad sequence of commands: mail transaction in progress"});
    return Next::proceed;
  }
  if (!auth_offered()) {  // RFC 4954 §6
    reply({538, "5.7.11", "Encryption required for requested authentication mechanism"});
    return Next::proceed;
  }
  // "AUTH mechanism [initial-response]", the mechanism in any letter case.
  std::string_view argument = command.argument;
  auto space = argument.find(' ');
  std::string mechanism(argument.substr(0, space));
  std::transform(mechanism.begin(), mechanism.end(), mechanism.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (mechanism.empty()) {
    reply({501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"});
    return Next::proceed;
  }
  if (mechanism != "PLAIN" && mechanism != "LOGIN") {
    reply({504, "5.5.4", "Unrecognized authentication type"});
    return Next::proceed;
  }
  auth_mechanism_ = mechanism;
  auth_initial_.reset();
  if (space != std::string_view::npos) {
    auto initial = argument.substr(space + 1);
    while (!initial.empty() && initial.front() == ' ') initial.remove_prefix(1);
    if (!initial.empty()) auth_initial_ = std::string(initial);
  }
  return Next::authenticate;
}

asio::awaitable<std::optional<std::string>> Session::sasl_response(std::string_view challenge, Next& next) {
  next = Next::proceed;
  // "334 " and the base64 challenge; an empty one keeps its space (RFC 4954 §4).
  out_ += "334 ";
  out_ += challenge;
  out_ += "\r\n";
  auto [line, end] = co_await next_line();
  if (!line) {
    reply_for_end(end, "AUTH");
    next = Next::close;
    co_return std::nullopt;
  }
  if (line->too_long) {
    reply({500, "5.5.6", "Line too long"});
    co_return std::nullopt;
  }
  if (line->text == "*") {
    reply({501, "5.7.0", "Authentication aborted"});
    co_return std::nullopt;
  }
  auto decoded = util::base64_decode(line->text);
  wipe(line->text);
  if (!decoded) {
    reply({501, "5.5.2", "Cannot decode response"});
    co_return std::nullopt;
  }
  co_return decoded;
}

asio::awaitable<Session::Next> Session::authenticate() {
  const std::string mechanism = std::exchange(auth_mechanism_, {});
  std::optional<std::string> initial = std::exchange(auth_initial_, std::nullopt);
  Next next = Next::proceed;
  std::string user;
  std::string password;
  bool well_formed = true;

  if (mechanism == "PLAIN") {
    // RFC 4616 §2: authzid NUL authcid NUL passwd. "=" is an empty initial response.
    std::optional<std::string> message;
    if (initial) {
      message = *initial == "=" ? std::optional<std::string>("") : util::base64_decode(*initial);
      wipe(*initial);
      if (!message) {
        reply({501, "5.5.2", "Cannot decode response"});
        co_return Next::proceed;
      }
    } else {
      message = co_await sasl_response("", next);
      if (!message) co_return next;
    }
    auto first = message->find('\0');
    auto second = first == std::string::npos ? std::string::npos : message->find('\0', first + 1);
    if (second == std::string::npos) {
      well_formed = false;
    } else {
      std::string authzid = message->substr(0, first);
      user = message->substr(first + 1, second - first - 1);
      password = message->substr(second + 1);
      // Acting for another user is not supported: the authorization identity, when given,
      // must be the authentication identity.
      if (!authzid.empty() && authzid != user) well_formed = false;
    }
    wipe(*message);
  } else {  // LOGIN: user name and password, each its own base64 line
    std::optional<std::string> name;
    if (initial) {
      name = util::base64_decode(*initial);
      if (!name) {
        reply({501, "5.5.2", "Cannot decode response"});
        co_return Next::proceed;
      }
    } else {
      name = co_await sasl_response("VXNlcm5hbWU6", next);  // "Username:"
      if (!name) co_return next;
    }
    user = std::move(*name);
    auto secret = co_await sasl_response("UGFzc3dvcmQ6", next);  // "Password:"
    if (!secret) co_return next;
    password = std::move(*secret);
  }

  bool ok = false;
  if (well_formed && !user.empty()) {
    ok = co_await env_.auth->verify(user, password);
  }
  wipe(password);
  if (ok) {
    auth_user_ = user;
    auth_method_ = mechanism;
    spdlog::info("{}: sasl_method={}, sasl_username={}", client_label(), mechanism, loggable(user));
    reply({235, "2.7.0", "Authentication successful"});
    co_return Next::proceed;
  }

  ++auth_failures_;
  util::metrics::registry().auth_failures.inc("inbound_rejected");
  spdlog::warn("{}: SASL {} authentication failed, sasl_username={}", client_label(), mechanism, loggable(user));
  // Slow down whoever guesses: 250 ms, 500 ms, 1 s … up to 8 s, never past the session's end.
  auto delay = std::min<Clock::duration>(kFirstFailureDelay * (1u << std::min(auth_failures_ - 1, 6u)),
                                         kMaxFailureDelay);
  asio::steady_timer pause(socket_.get_executor(), std::min(Clock::now() + delay, session_deadline_));
  co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  reply({535, "5.7.8", "Authentication credentials invalid"});
  co_return Next::proceed;
}

}  // namespace mailhop::server
