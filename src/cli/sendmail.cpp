// mailhop sendmail: the sendmail command-line interface that cron, PHP's mail(), logwatch and
// friends call (issue 5). Reads one message on stdin and submits it over SMTP to the first
// listener of the configuration (on loopback when it listens on a wildcard address).
//
//   mailhop sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C|-c FILE] [recipient…]
//
//   -t       recipients also from the To:, Cc: and Bcc: fields (added to those given as
//            arguments, as Postfix does); Bcc: is removed from the message
//   -i, -oi  a line with only "." does not end the message (only the end of input does)
//   -f, -r   the envelope sender ("<>" for none); default: login name @ hostname
//   -F       the full name in the From: field that is added when the message has none
//   -C, -c   the configuration file (default as for every subcommand)
//   no-ops   -odi -odb -odq -oem … (any other -o option), -bm, -U, -v, -n, -x, -Am/-Ac, and
//            -B/-N/-R/-V/-L/-h/-X with their argument: sendmail's, meaningless here
//
// Invoked as `sendmail` (argv[0], an installed link) it behaves the same; as `mailq` it is
// `mailhop queue list` (see program_name_arguments()).
//
// Exit codes (sysexits.h): 0 sent; 75 (EX_TEMPFAIL) when the daemon is not reachable or
// answers 4xx, so callers retry; 65 (EX_DATAERR) when it refuses the sender or the message
// with 5xx; 67 (EX_NOUSER) when it refuses a recipient with 5xx; 64 (EX_USAGE) for usage
// errors and no recipients; 78 (EX_CONFIG) for a bad configuration. The server's reply is
// printed on failure.
//
// SECURITY: runs as the calling user, with their input; talks only to the configured local
// listener. The message is canonicalised (CRLF) and dot-stuffed on the wire, so a "." line in
// the input can never end the data early. Header fields are read only to find recipients.
#include <pwd.h>
#include <sysexits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/smtp/address.hpp"
#include "mailhop/smtp/dot_codec.hpp"
#include "mailhop/smtp/message_headers.hpp"

namespace mailhop::cli {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr auto reply_timeout = std::chrono::minutes(5);  // the server's own limit is per command
constexpr std::size_t max_reply = 64 * 1024;

struct Options {
  bool from_headers = false;  // -t
  bool ignore_dots = false;   // -i, -oi
  std::optional<std::string> sender;
  std::optional<std::string> full_name;
  std::string config_file;
  std::vector<std::string> recipients;
};

struct Failure {
  int exit_code;
  std::string message;
};

// sendmail's command line, by hand: its option style (-oi, -fADDR, -ti) is not CLI11's.
std::optional<Options> parse_options(const std::vector<std::string>& args, std::string& error) {
  Options o;
  auto value = [&](std::size_t& i, const std::string& arg, char flag) -> std::optional<std::string> {
    if (arg.size() > 2) return arg.substr(2);
    if (i + 1 < args.size()) return args[++i];
    error = std::string("option -") + flag + " needs a value";
    return std::nullopt;
  };
  bool options_end = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (options_end || arg.size() < 2 || arg[0] != '-') {
      o.recipients.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_end = true;
      continue;
    }
    if (arg.find_first_not_of("ti", 1) == std::string::npos) {  // -t, -i, -ti, -it
      for (char c : arg.substr(1)) (c == 't' ? o.from_headers : o.ignore_dots) = true;
      continue;
    }
    switch (arg[1]) {
      case 'o':
        if (arg == "-oi") o.ignore_dots = true;
        // -odi, -oem, -oQ…: delivery and error modes of sendmail; mailhop queues and bounces.
        if (arg == "-o") ++i;
        continue;
      case 'f':
      case 'r':
        if (auto v = value(i, arg, arg[1])) {
          o.sender = *v;
          continue;
        }
        return std::nullopt;
      case 'F':
        if (auto v = value(i, arg, 'F')) {
          o.full_name = *v;
          continue;
        }
        return std::nullopt;
      case 'C':
      case 'c':
        if (auto v = value(i, arg, arg[1])) {
          o.config_file = *v;
          continue;
        }
        return std::nullopt;
      case 'B':
      case 'N':
      case 'R':
      case 'V':
      case 'L':
      case 'h':
      case 'X':  // options with a value that mean nothing here
        if (!value(i, arg, arg[1])) return std::nullopt;
        continue;
      case 'b':
        if (arg == "-bm") continue;
        error = "option " + arg + " is not supported (only -bm, delivering a message from stdin)";
        return std::nullopt;
      case 'A':
      case 'U':
      case 'v':
      case 'n':
      case 'x':
      case 'G':
        continue;
      default:
        error = "unknown option " + arg;
        return std::nullopt;
    }
  }
  return o;
}

// The message on stdin as lines without their line end. Without -i a line with only "." ends
// it, as in sendmail.
std::vector<std::string> read_message(bool ignore_dots) {
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!ignore_dots && line == ".") break;
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The addresses of an address-list field body (RFC 5322 §3.4): "A <a@x>, b@y, "B, C" <c@z>,
// group: d@w;". Comments and display names are skipped.
std::vector<std::string> addresses_in(std::string_view body) {
  std::vector<std::string> out;
  std::string current, angle;
  bool in_quotes = false, in_angle = false, has_angle = false;
  int comment = 0;
  auto flush = [&] {
    std::string a = has_angle ? angle : current;
    auto first = a.find_first_not_of(" \t");
    auto last = a.find_last_not_of(" \t");
    if (first != std::string::npos) out.push_back(a.substr(first, last - first + 1));
    current.clear();
    angle.clear();
    has_angle = false;
  };
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\' && (in_quotes || comment) && i + 1 < body.size()) {
      if (!comment) (in_angle ? angle : current) += body.substr(i, 2);
      ++i;
    } else if (comment) {
      comment += c == '(' ? 1 : c == ')' ? -1 : 0;
    } else if (in_quotes) {
      (in_angle ? angle : current) += c;
      if (c == '"') in_quotes = false;
    } else if (c == '"') {
      in_quotes = true;
      (in_angle ? angle : current) += c;
    } else if (c == '(') {
      comment = 1;
    } else if (c == '<') {
      in_angle = has_angle = true;
      angle.clear();
    } else if (c == '>') {
      in_angle = false;
    } else if (in_angle) {
      angle += c;
    } else if (c == ':') {
      current.clear();  // a group's name
    } else if (c == ',' || c == ';') {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return out;
}

// The header section: each field with its continuation lines, and where the body starts.
struct Header {
  std::vector<std::vector<std::string>> fields;
  std::size_t body_start = 0;  // index of the first line after the header section
};

Header split_header(const std::vector<std::string>& lines) {
  Header h;
  std::size_t i = 0;
  for (; i < lines.size(); ++i) {
    const auto& line = lines[i];
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !h.fields.empty()) {
      h.fields.back().push_back(line);
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || line.find_first_of(" \t") < colon) break;  // body text
    h.fields.push_back({line});
  }
  h.body_start = i;
  return h;
}

std::string field_name(const std::vector<std::string>& field) { return lower(field[0].substr(0, field[0].find(':'))); }

std::string field_body(const std::vector<std::string>& field) {
  std::string body = field[0].substr(field[0].find(':') + 1);
  for (std::size_t k = 1; k < field.size(); ++k) body += " " + field[k];
  return body;
}

// "Jane Doe" as a display name: an atom phrase as is, anything else quoted.
std::string display_name(const std::string& name) {
  bool plain = !name.empty() && name.find_first_of("()<>[]:;@\\,.\"") == std::string::npos;
  if (plain) return name;
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string login_name() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) return pw->pw_name;
  for (const char* var : {"LOGNAME", "USER"}) {
    if (const char* v = std::getenv(var); v && *v) return v;
  }
  return "nobody";
}

// A bare local name ("root", as cron writes it) gets this relay's domain.
std::string qualify(const std::string& address, const std::string& hostname) {
  return address.find('@') == std::string::npos ? address + "@" + hostname : address;
}

// A plain SMTP client on one connection, every read with a deadline.
class Client {
 public:
  explicit Client(asio::io_context& io) : io_(io), socket_(io) {}

  std::optional<Failure> connect(const tcp::endpoint& ep) {
    boost::system::error_code result = asio::error::timed_out;
    socket_.async_connect(ep, [&](const boost::system::error_code& ec) { result = ec; });
    run();
    if (result) {
      return Failure{EX_TEMPFAIL, "cannot connect to " + endpoint_text(ep) + ": " + result.message() +
                                      " (is the mailhop daemon running?)"};
    }
    return std::nullopt;
  }

  // One reply (all lines of a multiline one); code 0 when the connection failed.
  std::pair<int, std::string> reply() {
    std::string text;
    while (true) {
      boost::system::error_code result = asio::error::timed_out;
      std::size_t n = 0;
      asio::async_read_until(socket_, buffer_, "\n", [&](const boost::system::error_code& ec, std::size_t k) {
        result = ec;
        n = k;
      });
      run();
      if (result) return {0, "connection lost: " + result.message()};
      std::string line(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + n);
      buffer_.consume(n);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      text += (text.empty() ? "" : "\n") + line;
      if (line.size() < 3 || text.size() > max_reply) return {0, "not an SMTP reply: " + line};
      if (line.size() == 3 || line[3] != '-') return {std::atoi(line.substr(0, 3).c_str()), text};
    }
  }

  bool send(const std::string& data) {
    boost::system::error_code result = asio::error::timed_out;
    asio::async_write(socket_, asio::buffer(data), [&](const boost::system::error_code& ec, std::size_t) { result = ec; });
    run();
    return !result;
  }

  // A command and its reply.
  std::pair<int, std::string> command(const std::string& line) {
    if (!send(line + "\r\n")) return {0, "connection lost while sending " + line};
    return reply();
  }

  void quit() {
    if (command("QUIT").first == 0) return;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  static std::string endpoint_text(const tcp::endpoint& ep) {
    auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
  }

  void run() {
    io_.restart();
    if (io_.run_for(reply_timeout) == 0 || !io_.stopped()) {
      boost::system::error_code ignored;
      socket_.close(ignored);  // completes the pending operation with an error
      io_.restart();
      io_.run();
    }
  }

  asio::io_context& io_;
  tcp::socket socket_;
  asio::streambuf buffer_;
};

// Where to submit: the first listener that speaks plain SMTP first (not implicit TLS), on
// loopback when it listens on a wildcard address.
std::optional<tcp::endpoint> submission_endpoint(const config::Config& c) {
  for (const auto& l : c.listen) {
    if (l.tls == config::ListenerTls::implicit) continue;
    auto address = asio::ip::make_address(l.host);
    if (address.is_unspecified()) {
      address = address.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                 : asio::ip::address(asio::ip::address_v6::loopback());
    }
    return tcp::endpoint(address, l.port);
  }
  return std::nullopt;
}

std::optional<Failure> fail_reply(int code, const std::string& text, int permanent_exit) {
  if (code >= 200 && code < 400) return std::nullopt;
  int exit_code = code >= 500 && code < 600 ? permanent_exit : EX_TEMPFAIL;
  return Failure{exit_code, code == 0 ? text : "the mail system answered: " + text};
}

// The SMTP dialogue; returns a failure or nothing when the message was accepted.
std::optional<Failure> submit(const tcp::endpoint& ep, const std::string& helo, const std::string& sender,
                              const std::vector<std::string>& recipients, const std::string& content) {
  asio::io_context io;
  Client client(io);
  if (auto f = client.connect(ep)) return f;
  auto [code, text] = client.reply();
  if (auto f = fail_reply(code, text, EX_UNAVAILABLE)) return f;
  std::tie(code, text) = client.command("EHLO " + helo);
  if (code >= 500 && code < 600) std::tie(code, text) = client.command("HELO " + helo);
  if (auto f = fail_reply(code, text, EX_UNAVAILABLE)) return f;
  std::tie(code, text) = client.command("MAIL FROM:<" + sender + ">");
  if (auto f = fail_reply(code, text, EX_DATAERR)) {
    client.quit();
    return f;
  }
  std::optional<Failure> refused;  // a recipient refused for good: the others still get it
  std::size_t accepted = 0;
  for (const auto& r : recipients) {
    std::tie(code, text) = client.command("RCPT TO:<" + r + ">");
    if (auto f = fail_reply(code, text, EX_NOUSER)) {
      if (f->exit_code != EX_NOUSER) {
        client.quit();
        return f;
      }
      std::cerr << "mailhop sendmail: " << r << ": " << f->message << '\n';
      refused = f;
      continue;
    }
    ++accepted;
  }
  if (accepted == 0) {
    client.quit();
    return refused;
  }
  std::tie(code, text) = client.command("DATA");
  if (code != 354) {
    auto f = fail_reply(code == 0 || code >= 400 ? code : 554, text, EX_DATAERR);
    client.quit();
    return f;
  }
  if (!client.send(smtp::dot_stuff(content))) return Failure{EX_TEMPFAIL, "connection lost while sending the message"};
  std::tie(code, text) = client.reply();
  if (auto f = fail_reply(code, text, EX_DATAERR)) {
    client.quit();
    return f;
  }
  client.quit();
  if (refused) return Failure{EX_NOUSER, "sent to the other recipients"};
  return std::nullopt;
}

int run_sendmail(const std::vector<std::string>& args) {
  std::string error;
  auto options = parse_options(args, error);
  if (!options) {
    std::cerr << "mailhop sendmail: " << error
              << "\nusage: mailhop sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C FILE] [recipient…]\n";
    return EX_USAGE;
  }
  auto path = config::resolve_path(options->config_file.empty() ? std::nullopt
                                                                 : std::optional<std::string>(options->config_file));
  auto loaded = config::load_file(path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
    return EX_CONFIG;
  }
  const auto& c = *loaded.config;
  auto ep = submission_endpoint(c);
  if (!ep) {
    std::cerr << "mailhop sendmail: no listener without implicit TLS in " << path << " to submit to\n";
    return EX_CONFIG;
  }

  auto lines = read_message(options->ignore_dots);
  auto header = split_header(lines);

  std::vector<std::string> recipients;
  for (const auto& r : options->recipients) {
    for (const auto& a : addresses_in(r)) recipients.push_back(a);  // "a@x, b@y" as one argument too
  }
  bool has_from = false;
  std::vector<bool> keep(header.fields.size(), true);
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    auto name = field_name(header.fields[i]);
    has_from = has_from || name == "from";
    if (!options->from_headers) continue;
    if (name == "to" || name == "cc" || name == "bcc") {
      for (const auto& a : addresses_in(field_body(header.fields[i]))) recipients.push_back(a);
    }
    if (name == "bcc") keep[i] = false;  // blind copies stay blind
  }
  for (auto& r : recipients) r = qualify(r, c.hostname);
  std::sort(recipients.begin(), recipients.end());
  recipients.erase(std::unique(recipients.begin(), recipients.end()), recipients.end());
  for (const auto& r : recipients) {
    if (!smtp::is_valid_mailbox(r)) {
      std::cerr << "mailhop sendmail: \"" << r << "\" is not an email address\n";
      return EX_NOUSER;
    }
  }
  if (recipients.empty()) {
    std::cerr << "mailhop sendmail: no recipients (give them as arguments, or use -t to read To:, Cc:, Bcc:)\n";
    return EX_USAGE;
  }

  std::string login = qualify(login_name(), c.hostname);
  std::string sender = options->sender ? *options->sender : login;
  if (sender == "<>") sender.clear();
  if (sender.size() > 2 && sender.front() == '<' && sender.back() == '>') sender = sender.substr(1, sender.size() - 2);
  if (!sender.empty()) sender = qualify(sender, c.hostname);
  if (!sender.empty() && !smtp::is_valid_mailbox(sender)) {
    std::cerr << "mailhop sendmail: the sender \"" << sender << "\" is not an email address\n";
    return EX_USAGE;
  }

  // The message in canonical form (CRLF); a From: field when it has none (RFC 5322 §3.6).
  std::string content;
  if (!has_from) {
    std::string from = sender.empty() ? login : sender;
    content += "From: " + (options->full_name ? display_name(*options->full_name) + " <" + from + ">" : from) + "\r\n";
  }
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    if (!keep[i]) continue;
    for (const auto& line : header.fields[i]) content += line + "\r\n";
  }
  for (std::size_t i = header.body_start; i < lines.size(); ++i) {
    // A body that starts without the empty line gets one, so it is not read as a header.
    if (i == header.body_start && !lines[i].empty()) content += "\r\n";
    content += lines[i] + "\r\n";
  }

  if (auto f = submit(*ep, c.hostname, sender, recipients, content)) {
    std::cerr << "mailhop sendmail: " << f->message << '\n';
    return f->exit_code;
  }
  return EX_OK;
}

}  // namespace

void add_sendmail_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("sendmail", "Submit a message from stdin, like sendmail (-t, -i, -f, -F, -C)");
  sub->prefix_command();  // sendmail's own option syntax: parsed in run_sendmail
  sub->set_help_flag("--help", "Print this help message and exit");
  sub->footer(
      "usage: mailhop sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C FILE] [recipient…]\n"
      "Exit status: 0 sent, 75 daemon not reachable or 4xx, 65 message or sender refused,\n"
      "67 recipient refused, 64 usage error.");
  sub->callback([sub, &exit_code] { exit_code = run_sendmail(sub->remaining()); });
}

std::vector<std::string> program_name_arguments(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::string name = args.empty() ? "" : args[0].substr(args[0].rfind('/') + 1);
  if (name == "sendmail") {
    args.insert(args.begin() + 1, "sendmail");
  } else if (name == "mailq") {
    args.insert(args.begin() + 1, {"queue", "list"});
  }
  return args;
}

}  // namespace mailhop::cli
