// mailhop queue list|cat: what is in the spool, read directly from disk, so it works with the
// daemon stopped (issue 2, "Command line").
//
//   mailhop queue list [--json] -c FILE   the queue, like Postfix's mailq, or one JSON array
//   mailhop queue cat ID -c FILE          the stored message, byte for byte (CRLF, not stuffed)
//
// Exit codes (sysexits.h): 0; 65 (EX_DATAERR) for a malformed queue ID or an unreadable
// envelope; 66 (EX_NOINPUT) for an ID that is not queued; 77 (EX_NOPERM) for a spool that may
// not be read; 78 (EX_CONFIG) for a bad configuration.
//
// SECURITY: envelopes hold text from the network (the next hop's replies, HELO names). The text
// listing replaces control bytes, so a reply cannot drive the terminal; JSON strings are made
// valid UTF-8. Nothing here writes to the spool: it never creates, repairs or moves a file.
#include <sysexits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::cli {

namespace {

namespace json = boost::json;

// The configuration's spool, or an exit code after saying why not.
std::optional<std::filesystem::path> spool_path(const std::string& file, int& exit_code) {
  auto path = config::resolve_path(file.empty() ? std::nullopt : std::optional<std::string>(file));
  auto result = config::load_file(path);
  if (!result.config) {
    for (const auto& e : result.errors) std::cerr << e.to_string() << '\n';
    exit_code = EX_CONFIG;
    return std::nullopt;
  }
  std::filesystem::path spool = result.config->spool_path;
  std::error_code ec;
  if (std::filesystem::exists(spool, ec) && ::access(spool.c_str(), R_OK | X_OK) != 0) {
    std::cerr << "mailhop queue: cannot read the spool " << spool.string() << ": " << std::strerror(errno) << '\n';
    exit_code = EX_NOPERM;
    return std::nullopt;
  }
  return spool;
}

// Valid UTF-8 for JSON: each byte that does not start a well-formed sequence becomes U+FFFD.
std::string utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && !(n == 2 && c < 0xC2);
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {  // no overlong forms, no surrogates
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && n == 4) {  // no overlong forms, nothing beyond U+10FFFF
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// For the terminal: control bytes shown as '?'.
std::string printable(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return out;
}

json::value optional_string(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return json::string(utf8(*s));
}

json::object to_json(const spool::Envelope& e) {
  json::array recipients;
  for (const auto& r : e.recipients) {
    json::object o;
    o["address"] = utf8(r.address);
    o["state"] = std::string(spool::to_string(r.state));
    o["last_reply"] = r.last_reply.empty() ? json::value(nullptr) : json::value(utf8(r.last_reply));
    recipients.push_back(std::move(o));
  }
  json::object o;
  o["id"] = e.id.str();
  o["sender"] = utf8(e.sender);
  o["recipients"] = std::move(recipients);
  o["size"] = e.size;
  o["arrival"] = util::rfc3339(e.arrival);
  o["attempts"] = e.attempts;
  o["next_attempt"] = util::rfc3339(e.next_attempt);
  o["last_error"] = optional_string(e.last_error);
  o["held"] = e.held;
  o["body"] = e.eight_bit ? "8BITMIME" : "7BIT";
  o["smtputf8"] = e.smtputf8;
  o["client_host"] = utf8(e.client_host);
  o["client_ip"] = utf8(e.client_ip);
  o["auth_user"] = optional_string(e.auth_user);
  return o;
}

// "Sun Nov 22 03:11:47", local time, as mailq shows it.
std::string mailq_time(util::SystemTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S", &tm);
  return buf;
}

// The listing of Postfix's mailq: ID (with '!' when held), size, arrival, sender; the last
// error in parentheses; then each recipient with its state and last reply.
void print_text(const std::vector<spool::Envelope>& queue) {
  if (queue.empty()) {
    std::cout << "Mail queue is empty\n";
    return;
  }
  std::printf("%-27s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------");
  std::uint64_t bytes = 0;
  for (const auto& e : queue) {
    bytes += e.size;
    std::string id = e.id.str() + (e.held ? "!" : "");
    std::string sender = e.sender.empty() ? "<>" : printable(e.sender);
    std::printf("%-27s %8llu %-20s %s\n", id.c_str(), static_cast<unsigned long long>(e.size),
                mailq_time(e.arrival).c_str(), sender.c_str());
    if (e.last_error || e.attempts > 0) {
      std::string line = "(attempts " + std::to_string(e.attempts) + ", next " + util::rfc3339(e.next_attempt);
      if (e.last_error) line += ": " + printable(*e.last_error);
      line += ")";
      std::printf("%58s%s\n", "", line.c_str());
    }
    for (const auto& r : e.recipients) {
      std::string line = std::string(spool::to_string(r.state)) + std::string(8 - spool::to_string(r.state).size(), ' ') +
                         printable(r.address);
      if (!r.last_reply.empty()) line += " (" + printable(r.last_reply) + ")";
      std::printf("%58s%s\n", "", line.c_str());
    }
    std::printf("\n");
  }
  std::printf("-- %llu Kbytes in %zu Request%s.\n", static_cast<unsigned long long>((bytes + 1023) / 1024), queue.size(),
              queue.size() == 1 ? "" : "s");
}

int list(const std::string& file, bool as_json) {
  int exit_code = EX_OK;
  auto root = spool_path(file, exit_code);
  if (!root) return exit_code;
  spool::Spool spool({*root, true});  // never open()ed: nothing is created or changed
  auto queue = spool.list();
  if (as_json) {
    json::array out;
    for (const auto& e : queue) out.push_back(to_json(e));
    std::cout << json::serialize(out) << '\n';
  } else {
    print_text(queue);
  }
  std::cout << std::flush;
  return std::cout ? EX_OK : EX_IOERR;
}

int cat(const std::string& file, const std::string& id_text) {
  auto id = spool::QueueId::parse(id_text);
  if (!id) {
    std::cerr << "mailhop queue cat: '" << printable(id_text) << "' is not a queue ID (26 hex digits, as "
              << "`mailhop queue list` shows them)\n";
    return EX_DATAERR;
  }
  int exit_code = EX_OK;
  auto root = spool_path(file, exit_code);
  if (!root) return exit_code;
  spool::Spool spool({*root, true});
  if (!spool.contains(*id)) {
    std::cerr << "mailhop queue cat: no message " << id->str() << " in the queue " << root->string() << '\n';
    return EX_NOINPUT;
  }
  std::string error;
  if (!spool.load(*id, &error)) {
    std::cerr << "mailhop queue cat: cannot read the envelope of " << id->str() << ": " << error << '\n';
    return EX_DATAERR;
  }
  auto content = spool.read_content_sync(*id);
  if (!content) {
    std::cerr << "mailhop queue cat: the content of " << id->str() << " is missing\n";
    return EX_NOINPUT;
  }
  std::cout.write(content->data(), static_cast<std::streamsize>(content->size()));
  std::cout.flush();
  return std::cout ? EX_OK : EX_IOERR;
}

}  // namespace

void add_queue_command(CLI::App& app, int& exit_code) {
  auto* queue = app.add_subcommand("queue", "Show what is in the spool (read from disk; works with the daemon stopped)");
  queue->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  const std::string config_help = "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)";
  queue->add_option("-c,--config", *file, config_help);
  queue->footer("Exit status: 0; 65 malformed ID or unreadable envelope; 66 no such message; 77 spool not "
                "readable; 78 bad configuration.");

  auto* list_cmd = queue->add_subcommand("list", "List queued messages, like mailq");
  auto as_json = std::make_shared<bool>(false);
  list_cmd->add_flag("--json", *as_json,
                     "one JSON array: id, sender, recipients [{address, state, last_reply}], size, arrival, "
                     "attempts, next_attempt, last_error, held, …");
  list_cmd->add_option("-c,--config", *file, config_help);
  list_cmd->callback([&exit_code, file, as_json] { exit_code = list(*file, *as_json); });

  auto* cat_cmd = queue->add_subcommand("cat", "Print a queued message as stored (CRLF line ends, dots not stuffed)");
  auto id = std::make_shared<std::string>();
  cat_cmd->add_option("ID", *id, "queue ID, as `mailhop queue list` shows it")->required();
  cat_cmd->add_option("-c,--config", *file, config_help);
  cat_cmd->callback([&exit_code, file, id] { exit_code = cat(*file, *id); });
}

}  // namespace mailhop::cli
