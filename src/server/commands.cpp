// The command table and its handlers. Each handler first runs its check, which returns the
// complete refusal (code, enhanced code, words) or nothing, and only then acts (OpenSMTPD's
// check_/do_ split). No I/O here: handlers queue replies and tell the loop what comes next.
//
// SECURITY: arguments are untrusted. The HELO name must be printable ASCII without spaces
// before it is kept (it goes into Received: and the logs); addresses come through the smtp
// module's parser, which admits only valid mailboxes. An HTTP request line executes nothing.
#include <algorithm>
#include <array>
#include <cctype>

#include <spdlog/spdlog.h>

#include "mailhop/server/policy.hpp"
#include "mailhop/smtp/address.hpp"
#include "session_impl.hpp"

namespace mailhop::server {

// Flags in the manner of Postfix's smtpd command table. The trust issue adds "allowed before
// STARTTLS on a TLS-required listener" and "needs AUTH" here.
enum CommandFlag : unsigned {
  kNoArgument = 1u << 0,  // "DATA foo" is a syntax error (RFC 5321 §4.1.1)
};

struct Session::CommandSpec {
  smtp::Verb verb;
  Next (Session::*handler)(const smtp::Command&);
  unsigned flags;
};

const Session::CommandSpec* Session::find_command(smtp::Verb verb) {
  using V = smtp::Verb;
  static const std::array<CommandSpec, 16> table{{
      {V::helo, &Session::do_helo, 0},
      {V::ehlo, &Session::do_ehlo, 0},
      {V::mail, &Session::do_mail, 0},
      {V::rcpt, &Session::do_rcpt, 0},
      {V::data, &Session::do_data, kNoArgument},
      {V::rset, &Session::do_rset, kNoArgument},
      {V::noop, &Session::do_noop, 0},
      {V::quit, &Session::do_quit, kNoArgument},
      {V::vrfy, &Session::do_vrfy, 0},
      {V::expn, &Session::do_expn, 0},
      {V::help, &Session::do_help, 0},
      {V::starttls, &Session::do_starttls, kNoArgument},
      {V::auth, &Session::do_auth, 0},
      {V::bdat, &Session::do_not_implemented, 0},      // CHUNKING is not offered
      {V::http, &Session::do_http, 0},
      {V::unknown, &Session::do_unknown, 0},
  }};
  auto it = std::find_if(table.begin(), table.end(), [verb](const CommandSpec& c) { return c.verb == verb; });
  return it == table.end() ? &table.back() : &*it;
}

Session::Next Session::dispatch(const smtp::Command& command) {
  const auto* spec = find_command(command.verb);
  if ((spec->flags & kNoArgument) && !command.argument.empty()) {
    reply({501, "5.5.4", "Syntax: " + command.name + " takes no argument"});
    return Next::proceed;
  }
  return (this->*spec->handler)(command);
}

// ---- HELO / EHLO (RFC 5321 §4.1.1.1) ----

std::optional<Response> Session::check_helo(const smtp::Command& command) const {
  if (command.argument.empty()) return Response{501, "5.5.4", "Syntax: " + command.name + " hostname"};
  // Lenient as Postfix ("HELO my host" is taken whole), but never a control character: the
  // name goes into Received:, the envelope and the logs.
  for (unsigned char c : command.argument) {
    if (c < 0x20 || c > 0x7e) return Response{501, "5.5.4", "Invalid domain name: printable ASCII expected"};
  }
  return std::nullopt;
}

Session::Next Session::do_helo(const smtp::Command& command) {
  if (auto refusal = check_helo(command)) {
    reply(*refusal);
    return Next::proceed;
  }
  helo_ = command.argument;
  esmtp_ = false;
  reset_transaction();  // HELO/EHLO implies RSET (§4.1.4)
  state_ = State::ready;
  reply({250, "", config_.hostname});
  return Next::proceed;
}

Session::Next Session::do_ehlo(const smtp::Command& command) {
  if (auto refusal = check_helo(command)) {
    reply(*refusal);
    return Next::proceed;
  }
  helo_ = command.argument;
  esmtp_ = true;
  reset_transaction();
  state_ = State::ready;
  reply({250, "", config_.hostname, extensions()});
  return Next::proceed;
}

std::vector<std::string> Session::extensions() const {
  std::vector<std::string> keywords{
      "PIPELINING",                                               // RFC 2920
      "SIZE " + std::to_string(config_.limits.max_message_size),  // RFC 1870
  };
  // RFC 3207 §4.2: not offered again once TLS is on.
  if (env_.listener.tls == config::ListenerTls::starttls && !tls_ && env_.tls) keywords.push_back("STARTTLS");
  // RFC 4954 §3; not advertised where it would be refused with 538, nor after success.
  if (auth_offered() && auth_user_.empty()) keywords.push_back("AUTH PLAIN LOGIN");
  keywords.insert(keywords.end(), {
                                      "ENHANCEDSTATUSCODES",  // RFC 2034
                                      "8BITMIME",             // RFC 6152
                                      "SMTPUTF8",             // RFC 6531
                                  });
  return keywords;
}

std::uint64_t Session::max_message_size() const {
  return config_.limits.max_message_size == 0 ? UINT64_MAX : config_.limits.max_message_size;
}

// ---- MAIL (RFC 5321 §4.1.1.2, RFC 1870, RFC 6152, RFC 6531) ----

std::optional<Response> Session::check_mail(const smtp::PathParse& parsed) const {
  if (state_ == State::init) return Response{503, "5.5.1", "Bad sequence of commands: send HELO or EHLO first"};
  if (state_ != State::ready) return Response{503, "5.5.1", "Bad sequence of commands: nested MAIL command"};
  if (env_.listener.auth == config::ListenerAuth::required && auth_user_.empty())
    return Response{530, "5.7.0", "Authentication required"};
  if (!parsed.path) return Response{501, "5.5.4", parsed.error};
  const auto& path = *parsed.path;
  for (const auto& [keyword, value] : path.params) {
    if (keyword == "SIZE") {
      std::uint64_t size = 0;
      for (char c : value) size = size * 10 + static_cast<unsigned>(c - '0');  // digits checked by the parser
      if (config_.limits.max_message_size != 0 && size > config_.limits.max_message_size)
        return Response{552, "5.3.4", "Message too big: limit is " + std::to_string(config_.limits.max_message_size) + " bytes"};
    } else if (keyword == "BODY" || keyword == "SMTPUTF8" || keyword == "AUTH") {
      // Values checked by the parser; AUTH= (RFC 4954 §5) is accepted and not passed on.
    } else {
      return Response{555, "5.5.4", "Unsupported MAIL parameter: " + keyword};
    }
  }
  if (smtp::has_non_ascii(path.address) && !path.param("SMTPUTF8"))
    return Response{553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter"};
  // The users file's third field: the senders an authenticated user may use (the null sender
  // only when "<>" is listed, or when no list is given).
  if (!auth_user_.empty() && env_.auth && !env_.auth->may_send_as(auth_user_, path.address))
    return Response{553, "5.7.1", "Sender address rejected: not owned by user " + auth_user_};
  return std::nullopt;
}

Session::Next Session::do_mail(const smtp::Command& command) {
  auto parsed = smtp::parse_mail_argument(command.argument);
  if (auto refusal = check_mail(parsed)) {
    reply(*refusal);
    if (refusal->code != 503) log_reject("MAIL", *refusal, parsed.path ? parsed.path->address : "", "");
    return Next::proceed;
  }
  const auto& path = *parsed.path;
  transaction_ = Transaction{};
  transaction_.sender = path.address;
  if (const auto* size = path.param("SIZE")) transaction_.declared_size = std::stoull(*size);
  if (const auto* body = path.param("BODY")) {
    std::string upper = *body;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    transaction_.body_8bitmime = upper == "8BITMIME";
  }
  transaction_.smtputf8 = path.param("SMTPUTF8") != nullptr;
  state_ = State::mail;
  reply({250, "2.1.0", "Ok"});
  return Next::proceed;
}

// ---- RCPT (RFC 5321 §4.1.1.3) ----

std::optional<Response> Session::check_rcpt(const smtp::PathParse& parsed) const {
  if (state_ == State::init || state_ == State::ready)
    return Response{503, "5.5.1", "Bad sequence of commands: need MAIL command"};
  if (!parsed.path) return Response{501, "5.5.4", parsed.error};
  const auto& path = *parsed.path;
  if (!path.params.empty()) return Response{555, "5.5.4", "Unsupported RCPT parameter: " + path.params.front().first};
  if (smtp::has_non_ascii(path.address) && !transaction_.smtputf8)
    return Response{553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8 on MAIL"};
  if (auto refusal = check_relay(config_, ClientStanding{client_address_, !auth_user_.empty()})) return refusal;
  const auto& rcpts = transaction_.recipients;
  const bool known = std::find(rcpts.begin(), rcpts.end(), path.address) != rcpts.end();
  if (!known && config_.limits.max_recipients != 0 && rcpts.size() >= config_.limits.max_recipients)
    return Response{452, "4.5.3", "Too many recipients: limit is " + std::to_string(config_.limits.max_recipients)};
  return std::nullopt;
}

Session::Next Session::do_rcpt(const smtp::Command& command) {
  auto parsed = smtp::parse_rcpt_argument(command.argument);
  // <Postmaster> without a domain (RFC 5321 §4.5.1; any letter case) is the parser's one
  // address without "@". mailhop has no local mailboxes: it goes where postmaster@<hostname>
  // goes, as Postfix appends $myorigin. The relay rules apply to it as to any recipient.
  if (parsed.path && parsed.path->address.find('@') == std::string::npos) {
    parsed.path->address = "postmaster@" + config_.hostname;
  }
  if (auto refusal = check_rcpt(parsed)) {
    reply(*refusal);
    if (state_ == State::mail || state_ == State::rcpt) {
      ++transaction_.recipients_refused;
      if (refusal->code != 452 && refusal->code != 503)
        log_reject("RCPT", *refusal, transaction_.sender, parsed.path ? parsed.path->address : "");
    }
    return Next::proceed;
  }
  auto& rcpts = transaction_.recipients;
  const auto& address = parsed.path->address;
  // A repeated recipient is accepted again but kept once: one copy is what the client wants.
  if (std::find(rcpts.begin(), rcpts.end(), address) == rcpts.end()) rcpts.push_back(address);
  state_ = State::rcpt;
  reply({250, "2.1.5", "Ok"});
  return Next::proceed;
}

// ---- DATA (RFC 5321 §4.1.1.4); the content itself is in data.cpp ----

std::optional<Response> Session::check_data() const {
  if (state_ == State::init || state_ == State::ready)
    return Response{503, "5.5.1", "Bad sequence of commands: need MAIL command"};
  if (state_ == State::mail) {
    if (transaction_.recipients_refused > 0) return Response{554, "5.5.1", "No valid recipients"};
    return Response{503, "5.5.1", "Bad sequence of commands: need RCPT command"};
  }
  return std::nullopt;
}

Session::Next Session::do_data(const smtp::Command&) {
  if (auto refusal = check_data()) {
    reply(*refusal);
    return Next::proceed;
  }
  try {
    incoming_ = env_.spool->begin();
  } catch (const std::exception& e) {
    spdlog::error("cannot store a message from {}: {}", client_label(), e.what());
  }
  if (!incoming_) {
    reply({451, "4.3.0", "Cannot receive messages right now, try again later"});
    return Next::proceed;
  }
  reply({354, "", "End data with <CR><LF>.<CR><LF>"});
  return Next::receive_data;
}

// ---- the rest ----

Session::Next Session::do_rset(const smtp::Command&) {
  reset_transaction();
  reply({250, "2.0.0", "Ok"});
  return Next::proceed;
}

Session::Next Session::do_noop(const smtp::Command&) {
  reply({250, "2.0.0", "Ok"});
  return Next::proceed;
}

Session::Next Session::do_quit(const smtp::Command&) {
  reply({221, "2.0.0", "Bye"});
  return Next::close;
}

Session::Next Session::do_vrfy(const smtp::Command& command) {
  if (command.argument.empty()) {
    reply({501, "5.5.4", "Syntax: VRFY address"});
    return Next::proceed;
  }
  // RFC 5321 §3.5.3: a relay cannot verify, but does not refuse.
  reply({252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"});
  return Next::proceed;
}

Session::Next Session::do_expn(const smtp::Command&) {
  reply({502, "5.5.1", "EXPN not available: mailhop has no mailing lists"});
  return Next::proceed;
}

Session::Next Session::do_help(const smtp::Command&) {
  reply({214, "2.0.0", "mailhop: a store-and-forward relay (RFC 5321)",
         {"Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP", "End of HELP"}});
  return Next::proceed;
}

Session::Next Session::do_not_implemented(const smtp::Command& command) {
  reply({502, "5.5.1", command.name + " not implemented"});
  return Next::proceed;
}

// ---- STARTTLS (RFC 3207); the handshake itself is in session.cpp ----

Session::Next Session::do_starttls(const smtp::Command&) {
  if (tls_) {
    reply({503, "5.5.1", "Bad sequence of commands: TLS already active"});
    return Next::proceed;
  }
  if (env_.listener.tls != config::ListenerTls::starttls) {
    reply({502, "5.5.1", "STARTTLS not available on this port"});
    return Next::proceed;
  }
  if (state_ == State::mail || state_ == State::rcpt) {
    reply({503, "5.5.1", "Bad sequence of commands: mail transaction in progress"});
    return Next::proceed;
  }
  if (!env_.tls) {
    reply({454, "4.7.0", "TLS not available due to local problem"});
    return Next::proceed;
  }
  reply({220, "2.0.0", "Ready to start TLS"});
  return Next::start_tls;
}

Session::Next Session::do_http(const smtp::Command&) {
  // Cross-protocol request (a browser or proxy pointed at the port): one reply, then close.
  spdlog::warn("non-SMTP command from {}: HTTP request line", client_label());
  reply({554, "5.7.0", "This is an SMTP server, not HTTP"});
  return Next::close;
}

Session::Next Session::do_unknown(const smtp::Command&) {
  reply({500, "5.5.1", "Command not recognized"});
  return Next::proceed;
}

void Session::reset_transaction() {
  transaction_ = Transaction{};
  incoming_.reset();
  if (state_ != State::init) state_ = State::ready;
}

void Session::log_reject(std::string_view stage, const Response& response, std::string_view from,
                         std::string_view to) const {
  if (to.empty()) {
    spdlog::info("NOQUEUE: reject: {} from {}: {} {} {}; from=<{}>", stage, client_label(), response.code,
                 response.enhanced, response.text, from);
  } else {
    spdlog::info("NOQUEUE: reject: {} from {}: {} {} {}; from=<{}> to=<{}>", stage, client_label(), response.code,
                 response.enhanced, response.text, from, to);
  }
}

}  // namespace mailhop::server
