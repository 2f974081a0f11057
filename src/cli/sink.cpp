// mailhop sink: a small capturing SMTP server, for trying a setup locally, for tests, and as the
// next hop of the README's demo. Every message it accepts becomes one file in a standard Maildir
// (DIR/tmp, DIR/new, DIR/cur), written by the Maildir delivery protocol: tmp/<unique>, fsync,
// rename into new/. The file starts with
//
//   Return-Path: <sender>
//   X-Mailhop-Sink-Rcpt: <recipient>        (one line per recipient, in RCPT order)
//
// followed by the message exactly as received: dots unstuffed, CRLF line ends. The reply to the
// final dot is "250 2.0.0 Ok: stored as <file name>".
//
// It speaks plain ESMTP (PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES) through the
// smtp module's parsers; no TLS, no AUTH: it is a test double and a demo, not a mail server.
//
// SECURITY: binds to loopback by default. Input is untrusted and bounded: line length, message
// size, recipients per message, errors per session, and a deadline per command that trickling
// bytes do not extend. Nothing a client sends is executed or used as a path.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "cli/commands.hpp"
#include "mailhop/smtp/command.hpp"
#include "mailhop/smtp/data_reader.hpp"
#include "mailhop/smtp/line_buffer.hpp"
#include "mailhop/smtp/reply.hpp"
#include "mailhop/util/log.hpp"
#include "mailhop/util/units.hpp"

namespace mailhop::cli {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t kMaxRecipients = 1000;
constexpr int kMaxErrors = 20;  // then 421, as Postfix's smtpd_hard_error_limit

struct SinkOptions {
  std::string listen = "127.0.0.1:2526";
  std::string maildir;
  std::string max_size = "100MiB";
  std::string timeout = "5m";
};

struct SinkState {
  std::filesystem::path maildir;
  std::string hostname;
  std::uint64_t max_size = 0;
  std::chrono::milliseconds timeout{};
  asio::thread_pool* disk = nullptr;  // blocking file work stays off the network thread
};

// ---- Maildir -------------------------------------------------------------------------------

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

// The host part of a Maildir file name, with '/' and ':' encoded as the Maildir spec says.
std::string maildir_host(std::string host) {
  std::string out;
  for (char c : host) {
    if (c == '/') out += "\\057";
    else if (c == ':') out += "\\072";
    else out += c;
  }
  return out.empty() ? "localhost" : out;
}

// time.MusecPpidQn.host: unique on this host (Maildir's "modern" naming).
std::string unique_name(const std::string& host) {
  static std::atomic<unsigned long> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto sec = std::chrono::duration_cast<std::chrono::seconds>(now);
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now - sec);
  return std::to_string(sec.count()) + ".M" + std::to_string(usec.count()) + "P" + std::to_string(::getpid()) +
         "Q" + std::to_string(++counter) + "." + host;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct StoreResult {
  std::string name;   // set on success
  std::string error;  // set on failure
};

// The Maildir delivery protocol: write tmp/NAME, fsync it, rename it to new/NAME, and fsync new/
// so the entry itself survives a crash. Blocking: runs on the disk pool.
StoreResult store_message(const std::filesystem::path& maildir, const std::string& host, const std::string& head,
                          const std::string& content) {
  auto name = unique_name(host);
  auto tmp = maildir / "tmp" / name;
  auto dst = maildir / "new" / name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return {{}, "open " + tmp.string() + ": " + errno_text(errno)};
  bool ok = write_all(fd, head) && write_all(fd, content) && ::fsync(fd) == 0;
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && ::rename(tmp.c_str(), dst.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return {{}, "write " + tmp.string() + ": " + errno_text(err)};
  }
  int dir = ::open((maildir / "new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {name, {}};
}

// Runs on the disk pool; arguments by value, so they live in this coroutine's frame.
awaitable<StoreResult> store_on_pool(std::shared_ptr<const SinkState> state, std::string head, std::string content) {
  co_return store_message(state->maildir, maildir_host(state->hostname), head, content);
}

// ---- one SMTP session --------------------------------------------------------------------------

class Session {
 public:
  Session(tcp::socket socket, std::shared_ptr<const SinkState> state)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(std::move(state)) {}

  awaitable<void> run() {
    auto remote = socket_.remote_endpoint(ec_);
    peer_ = ec_ ? std::string("unknown") : fmt::format("[{}]:{}", remote.address().to_string(), remote.port());
    spdlog::debug("sink: connect from {}", peer_);
    reply(220, "", state_->hostname + " ESMTP mailhop sink");
    while (open_) {
      auto line = co_await read_line();
      if (!line) break;
      if (line->too_long) {
        error_reply(500, "5.5.6", "Error: line too long");
        continue;
      }
      co_await handle(smtp::parse_command(line->text));
    }
    co_await flush();
    spdlog::debug("sink: disconnect from {} messages={}", peer_, messages_);
    socket_.close(ec_);
  }

 private:
  // Replies are gathered and sent when the session is about to wait for input: a pipelined
  // group of commands gets its replies in one write (RFC 2920).
  void reply(int code, std::string_view enhanced, std::string_view text) {
    out_ += smtp::format_reply(code, enhanced, text);
  }

  void error_reply(int code, std::string_view enhanced, std::string_view text) {
    reply(code, enhanced, text);
    if (++errors_ >= kMaxErrors) {
      reply(421, "4.7.0", state_->hostname + " Error: too many errors");
      open_ = false;
    }
  }

  awaitable<void> flush() {
    if (out_.empty() || !socket_.is_open()) co_return;
    // A client that does not read its replies is dropped after the timeout, like a silent one.
    timer_.expires_after(state_->timeout);
    auto result =
        co_await (asio::async_write(socket_, asio::buffer(out_), use_tuple) || timer_.async_wait(use_tuple));
    out_.clear();
    if (result.index() == 1 || std::get<0>(std::get<0>(result))) {
      open_ = false;
      socket_.close(ec_);
    }
  }

  // Reads more bytes into lines_ before the deadline; false on EOF, error or timeout.
  awaitable<bool> read_more(std::chrono::steady_clock::time_point deadline) {
    co_await flush();
    if (!open_) co_return false;
    timer_.expires_at(deadline);
    auto result = co_await (socket_.async_read_some(asio::buffer(buf_), use_tuple) || timer_.async_wait(use_tuple));
    if (result.index() == 1) {
      reply(421, "4.4.2", state_->hostname + " Error: timeout exceeded");
      co_await flush();
      open_ = false;
      co_return false;
    }
    auto [ec, n] = std::get<0>(result);
    if (ec) {
      open_ = false;
      co_return false;
    }
    lines_.append(std::string_view(buf_.data(), n));
    co_return true;
  }

  awaitable<std::optional<smtp::Line>> read_line() {
    // One deadline per command, not extended by bytes trickling in.
    auto deadline = std::chrono::steady_clock::now() + state_->timeout;
    for (;;) {
      if (auto line = lines_.pop_line()) co_return line;
      if (!co_await read_more(deadline)) co_return std::nullopt;
    }
  }

  void reset_transaction() {
    sender_.reset();
    recipients_.clear();
  }

  awaitable<void> handle(const smtp::Command& cmd) {
    using smtp::Verb;
    switch (cmd.verb) {
      case Verb::ehlo:
      case Verb::helo:
        if (cmd.argument.empty()) {
          error_reply(501, "5.5.4", "Syntax: " + cmd.name + " hostname");
          break;
        }
        reset_transaction();
        if (cmd.verb == Verb::helo) {
          reply(250, "", state_->hostname);
        } else {
          out_ += smtp::format_multiline(250, {state_->hostname, "PIPELINING", "SIZE " + std::to_string(state_->max_size),
                                               "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"});
        }
        break;
      case Verb::mail: do_mail(cmd.argument); break;
      case Verb::rcpt: do_rcpt(cmd.argument); break;
      case Verb::data: co_await do_data(cmd.argument); break;
      case Verb::rset:
        reset_transaction();
        reply(250, "2.0.0", "Ok");
        break;
      case Verb::noop: reply(250, "2.0.0", "Ok"); break;
      case Verb::quit:
        reply(221, "2.0.0", "Bye");
        open_ = false;
        break;
      case Verb::vrfy: reply(252, "2.5.2", "Cannot VRFY user, but will accept the message"); break;
      case Verb::help: reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"); break;
      case Verb::http:  // a web client or a cross-protocol attack: answer once, then hang up
        reply(500, "5.5.1", "Error: this is an SMTP server, not an HTTP server");
        open_ = false;
        break;
      case Verb::starttls:
      case Verb::auth:
      case Verb::bdat:
      case Verb::expn: error_reply(502, "5.5.1", "Error: command not implemented"); break;
      case Verb::unknown: error_reply(500, "5.5.1", "Error: command not recognized"); break;
    }
    co_return;
  }

  void do_mail(const std::string& argument) {
    if (sender_) return error_reply(503, "5.5.1", "Error: nested MAIL command");
    auto parsed = smtp::parse_mail_argument(argument);
    if (!parsed.path) return error_reply(501, "5.5.4", parsed.error);
    for (const auto& [keyword, value] : parsed.path->params) {
      if (keyword != "SIZE" && keyword != "BODY" && keyword != "SMTPUTF8")
        return error_reply(555, "5.5.4", "Unsupported option: " + keyword);
    }
    if (auto size = parsed.path->param("SIZE"); size && std::stoull(*size) > state_->max_size)
      return error_reply(552, "5.3.4", "Message too big: limit is " + std::to_string(state_->max_size) + " bytes");
    sender_ = parsed.path->address;
    reply(250, "2.1.0", "Ok");
  }

  void do_rcpt(const std::string& argument) {
    if (!sender_) return error_reply(503, "5.5.1", "Error: need MAIL command");
    auto parsed = smtp::parse_rcpt_argument(argument);
    if (!parsed.path) return error_reply(501, "5.5.4", parsed.error);
    if (!parsed.path->params.empty())
      return error_reply(555, "5.5.4", "Unsupported option: " + parsed.path->params.front().first);
    if (recipients_.size() >= kMaxRecipients) return reply(452, "4.5.3", "Error: too many recipients");
    recipients_.push_back(parsed.path->address);
    reply(250, "2.1.5", "Ok");
  }

  awaitable<void> do_data(const std::string& argument) {
    if (!argument.empty()) co_return error_reply(501, "5.5.4", "Syntax: DATA");
    if (!sender_) co_return error_reply(503, "5.5.1", "Error: need MAIL command");
    if (recipients_.empty()) co_return error_reply(503, "5.5.1", "Error: need RCPT command");
    reply(354, "", "End data with <CR><LF>.<CR><LF>");

    smtp::DataReader reader(state_->max_size);
    std::string content;
    auto deadline = std::chrono::steady_clock::now() + state_->timeout;
    for (;;) {
      lines_.consume(reader.feed(lines_.pending(), content));
      if (reader.done()) break;
      if (!co_await read_more(deadline)) co_return;  // the client left or timed out: nothing stored
    }

    if (reader.bare_cr()) {
      reset_transaction();
      co_return reply(550, "5.6.0", "Message refused: it contains a bare CR (a CR not followed by LF)");
    }
    if (reader.too_big()) {
      reset_transaction();
      co_return reply(552, "5.3.4", "Message too big: limit is " + std::to_string(state_->max_size) + " bytes");
    }

    std::string head = "Return-Path: <" + *sender_ + ">\r\n";
    for (const auto& r : recipients_) head += "X-Mailhop-Sink-Rcpt: <" + r + ">\r\n";
    // A free coroutine, not a capturing lambda: g++ 12 destroys lambda captures twice when the
    // lambda is a temporary inside a co_await expression.
    auto stored = co_await asio::co_spawn(*state_->disk, store_on_pool(state_, std::move(head), std::move(content)),
                                          asio::use_awaitable);
    if (stored.name.empty()) {
      spdlog::error("sink: cannot store a message from {}: {}", peer_, stored.error);
      reply(451, "4.3.0", "Error: could not store the message");
    } else {
      ++messages_;
      spdlog::info("sink: stored {} from=<{}> nrcpt={} size={} client={}", stored.name, *sender_, recipients_.size(),
                   reader.size(), peer_);
      reply(250, "2.0.0", "Ok: stored as " + stored.name);
    }
    reset_transaction();
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const SinkState> state_;
  boost::system::error_code ec_;  // for calls whose failure changes nothing
  std::string peer_;
  smtp::LineBuffer lines_{4096};
  std::array<char, 65536> buf_{};
  std::string out_;
  bool open_ = true;
  int errors_ = 0;
  unsigned long messages_ = 0;
  std::optional<std::string> sender_;
  std::vector<std::string> recipients_;
};

// Owns the session for as long as it runs.
awaitable<void> run_session(std::shared_ptr<Session> session) { co_await session->run(); }

awaitable<void> accept_loop(tcp::acceptor& acceptor, std::shared_ptr<const SinkState> state) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {  // EMFILE and the like: say so and keep serving the others
      spdlog::warn("sink: accept: {}", ec.message());
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), state);
    asio::co_spawn(
        acceptor.get_executor(), run_session(std::move(session)),
        [](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("sink: session ended by an exception: {}", ex.what());
          }
        });
  }
}

// "127.0.0.1:2526", "[::1]:2526", "localhost:2526".
std::optional<tcp::endpoint> parse_listen(asio::io_context& io, const std::string& text, std::string& error) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected [IPv6]:port";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      error = "expected host:port or [IPv6]:port";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535) {
    error = "bad port '" + port + "'";
    return std::nullopt;
  }
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    error = "cannot resolve '" + host + "': " + ec.message();
    return std::nullopt;
  }
  return results.begin()->endpoint();
}

int run_sink(const SinkOptions& options) {
  util::setup_logging("info", util::LogFormat::text);
  auto state = std::make_shared<SinkState>();
  state->maildir = options.maildir;
  state->hostname = asio::ip::host_name();

  auto max_size = util::parse_size(options.max_size);
  auto timeout = util::parse_duration(options.timeout);
  if (!max_size || *max_size == 0) {
    std::cerr << "mailhop sink: --max-message-size: not a size: " << options.max_size << '\n';
    return EX_USAGE;
  }
  if (!timeout || timeout->count() == 0) {
    std::cerr << "mailhop sink: --timeout: not a duration: " << options.timeout << '\n';
    return EX_USAGE;
  }
  state->max_size = *max_size;
  state->timeout = *timeout;

  for (const char* sub : {"tmp", "new", "cur"}) {
    std::error_code ec;
    std::filesystem::create_directories(state->maildir / sub, ec);
    if (ec) {
      std::cerr << "mailhop sink: cannot create " << (state->maildir / sub).string() << ": " << ec.message() << '\n';
      return EX_CANTCREAT;
    }
  }

  asio::io_context io(1);
  std::string error;
  auto endpoint = parse_listen(io, options.listen, error);
  if (!endpoint) {
    std::cerr << "mailhop sink: --listen " << options.listen << ": " << error << '\n';
    return EX_USAGE;
  }
  tcp::acceptor acceptor(io);
  try {
    acceptor.open(endpoint->protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    if (endpoint->address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(*endpoint);
    acceptor.listen();
  } catch (const boost::system::system_error& e) {
    std::cerr << "mailhop sink: cannot listen on " << options.listen << ": " << e.code().message() << '\n';
    return EX_UNAVAILABLE;
  }

  asio::thread_pool disk(2);
  state->disk = &disk;

  auto bound = acceptor.local_endpoint();
  spdlog::info("sink: listening on {}:{}, storing into {}",
               bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string(),
               bound.port(), state->maildir.string());

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("sink: signal {}, stopping", signo);
    boost::system::error_code ignored;
    acceptor.close(ignored);
    io.stop();  // messages already answered with 250 are on disk; the others were never promised
  });

  asio::co_spawn(io, accept_loop(acceptor, state), asio::detached);
  io.run();
  disk.join();
  return EX_OK;
}

}  // namespace

void add_sink_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand(
      "sink", "Run a small capturing SMTP server that stores every message it receives in a Maildir");
  auto options = std::make_shared<SinkOptions>();
  auto config = std::make_shared<std::string>();
  sub->add_option("--listen", options->listen, "address to listen on: host:port or [IPv6]:port")
      ->capture_default_str();
  sub->add_option("--maildir", options->maildir, "Maildir to store messages in (DIR/tmp, DIR/new, DIR/cur)")
      ->required();
  sub->add_option("--max-message-size", options->max_size, "largest message accepted (e.g. 25MiB)")
      ->capture_default_str();
  sub->add_option("--timeout", options->timeout, "deadline for each command and for the DATA phase (e.g. 30s, 5m)")
      ->capture_default_str();
  sub->add_option("-c,--config", *config, "accepted like every subcommand's; the sink reads no configuration");
  sub->footer(
      "Each message is stored as DIR/new/<unique name>: a Return-Path: line, one X-Mailhop-Sink-Rcpt: line\n"
      "per recipient, then the message as received (CRLF line ends). No TLS, no AUTH: for local trials\n"
      "and tests. SIGINT or SIGTERM stops it (exit 0).");
  sub->callback([&exit_code, options] { exit_code = run_sink(*options); });
}

}  // namespace mailhop::cli
