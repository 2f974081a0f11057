// The Session class behind run_session(): private to the server module, split over three files
// by concern — session.cpp (the loop, reading, writing, deadlines), commands.cpp (the command
// table with its check_/do_ handlers, no I/O) and data.cpp (receiving a message into the spool).
//
// SECURITY: see session.hpp. Handlers never act before their check has passed, and every
// refusal is a complete reply with an enhanced status code.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "mailhop/server/response.hpp"
#include "mailhop/server/session.hpp"
#include "mailhop/server/transaction.hpp"
#include "mailhop/smtp/command.hpp"
#include "mailhop/smtp/line_buffer.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::server {

class Session {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kCommandReadSize = 4096;  // read size between messages

  Session(boost::asio::ip::tcp::socket socket, SessionEnv env);
  ~Session();
  boost::asio::awaitable<void> run();

 private:
  // Where the session stands (OpenSMTPD keeps the same explicit state); the transaction data
  // itself is in transaction_.
  enum class State {
    init,  // connected, no HELO/EHLO yet
    ready, // greeted, no transaction
    mail,  // MAIL accepted
    rcpt,  // at least one RCPT accepted
  };
  // What the loop does after a command.
  enum class Next { proceed, receive_data, start_tls, authenticate, close };
  // How a wait for input ended.
  enum class Wait { data, closed, timeout, stopping };

  // ---- commands.cpp: the command table and its handlers (no I/O) ----
  struct CommandSpec;
  static const CommandSpec* find_command(smtp::Verb verb);
  Next dispatch(const smtp::Command& command);

  std::optional<Response> check_helo(const smtp::Command& command) const;
  std::optional<Response> check_mail(const smtp::PathParse& parsed) const;
  std::optional<Response> check_rcpt(const smtp::PathParse& parsed) const;
  std::optional<Response> check_data() const;

  Next do_helo(const smtp::Command& command);
  Next do_ehlo(const smtp::Command& command);
  Next do_mail(const smtp::Command& command);
  Next do_rcpt(const smtp::Command& command);
  Next do_data(const smtp::Command& command);
  Next do_rset(const smtp::Command& command);
  Next do_noop(const smtp::Command& command);
  Next do_quit(const smtp::Command& command);
  Next do_vrfy(const smtp::Command& command);
  Next do_expn(const smtp::Command& command);
  Next do_help(const smtp::Command& command);
  Next do_not_implemented(const smtp::Command& command);
  Next do_starttls(const smtp::Command& command);
  Next do_auth(const smtp::Command& command);
  Next do_http(const smtp::Command& command);
  Next do_unknown(const smtp::Command& command);

  // The EHLO keywords after the greeting line.
  std::vector<std::string> extensions() const;
  std::uint64_t max_message_size() const;
  void reset_transaction();
  // "NOQUEUE: reject: RCPT from host[ip]: 554 5.7.1 …; from=<…> to=<…>", as Postfix logs it.
  // For MAIL, `from` is what the command named (the transaction has none yet) and `to` is "".
  void log_reject(std::string_view stage, const Response& response, std::string_view from, std::string_view to) const;

  // ---- auth.cpp: AUTH (RFC 4954) ----
  // AUTH is offered and accepted on a listener with auth: optional or required, over TLS or
  // from a loopback address.
  bool auth_offered() const;
  // The SASL exchange for the AUTH command do_auth() accepted: challenges, responses, the
  // password check on the Authenticator's pool, and the slow-down after a failure.
  boost::asio::awaitable<Next> authenticate();
  // Sends a challenge and reads the client's response, decoded. nullopt when the exchange
  // ended (cancelled, malformed, connection gone: the reply is queued and `next` says how on).
  boost::asio::awaitable<std::optional<std::string>> sasl_response(std::string_view challenge, Next& next);

  // ---- data.cpp: DATA ----
  boost::asio::awaitable<Next> receive_data();

  // ---- session.cpp: I/O ----
  // On a proxy_protocol listener, before anything else: checks that the peer is a trusted
  // proxy, reads its PROXY header and takes the client's address from it (a LOCAL or UNKNOWN
  // header keeps the socket's). false (logged) when the connection must close without a word.
  boost::asio::awaitable<bool> accept_proxy_header();
  // After STARTTLS's 220: drops what the client sent ahead (CVE-2011-0411), shakes hands and
  // starts the session over (RFC 3207 §4.2).
  boost::asio::awaitable<Next> start_tls();
  // The TLS handshake as the server, under the command deadline. false (logged) when it fails.
  boost::asio::awaitable<bool> handshake();
  // Queues a reply; it is written when the input is drained (RFC 2920 §3.1). 5xx replies count
  // against limits.max_errors.
  void reply(const Response& response);
  // Writes the queued replies. false when the deadline passed or the connection is gone.
  boost::asio::awaitable<bool> flush(Clock::time_point deadline);
  // Reads what is there into lines_, waiting until `deadline` (capped by the session's).
  // `interruptible`: a stop request ends the wait (waiting for a command outside a transaction).
  boost::asio::awaitable<Wait> read_more(Clock::time_point deadline, bool interruptible);
  // The next command line, or how the wait ended.
  struct LineOrEnd {
    std::optional<smtp::Line> line;
    Wait end = Wait::data;
  };
  boost::asio::awaitable<LineOrEnd> next_line();
  // Says why the session ends (timeout, shutdown) where the client can still read it.
  void reply_for_end(Wait why, std::string_view stage);
  boost::asio::awaitable<void> close();

  std::string client_label() const;  // "helo[ip]" or "unknown[ip]", for logs
  std::string_view stage() const;    // the last command's name, for "lost connection after X"

  // Shared with the stop callback, which may fire on another thread: it posts to the session's
  // executor and cancels the timer only while the session waits for a command.
  struct Alarm {
    explicit Alarm(const boost::asio::any_io_executor& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    bool interruptible = false;
  };

  // Every byte in or out goes through read_more() and flush(): the one place where the trust
  // issue puts a TLS stream in front of the socket (and clears lines_ after STARTTLS).
  boost::asio::ip::tcp::socket socket_;
  struct TlsLayer;  // session.cpp: the ssl::stream over socket_, once TLS is on
  std::unique_ptr<TlsLayer> tls_;
  bool tls_broken_ = false;  // a handshake failed: nothing more may be written
  std::string tls_info_;     // "TLSv1.3 with cipher … (256/256 bits)" once TLS is on
  SessionEnv env_;
  const config::Config& config_;
  std::shared_ptr<Alarm> alarm_;
  ShutdownSignal::Subscription stop_subscription_;

  // The client: the socket's peer, or on a proxy_protocol listener the address the PROXY
  // header gives. Everything (relay permission, AUTH rules, logs, Received:) uses these.
  std::string client_ip_;  // canonical text form
  boost::asio::ip::address client_address_;
  Clock::time_point session_deadline_;

  smtp::LineBuffer lines_;
  std::vector<char> read_buffer_;
  std::string out_;  // replies not yet written

  State state_ = State::init;
  std::string helo_;
  bool esmtp_ = false;
  Transaction transaction_;
  std::unique_ptr<spool::Incoming> incoming_;  // between DATA's 354 and the final dot

  std::string auth_mechanism_;         // between do_auth() and authenticate(): "PLAIN", "LOGIN"
  std::optional<std::string> auth_initial_;  // the initial response (RFC 4954 §4), still base64
  std::string auth_user_;              // who authenticated; "" when nobody did
  std::string auth_method_;            // the mechanism they used, for the logs
  unsigned auth_failures_ = 0;

  std::string last_command_ = "CONNECT";
  unsigned commands_ = 0;
  unsigned messages_ = 0;
  unsigned errors_ = 0;
};

}  // namespace mailhop::server
