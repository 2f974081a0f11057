// mailhop queue list|show|cat|flush|retry|hold|release|delete (issue 5, "Command line").
//
// While the daemon runs (it holds the spool lock, mailhop/spool/lock.hpp) every command but cat
// goes through its admin API, so the daemon's schedule and the disk agree; when it does not,
// the command works on the spool directly: reads as they are, and hold/release/retry/delete
// edit envelopes with the spool lock held, so a daemon cannot start in the middle.
//
//   mailhop queue list [--json]     the queue, like Postfix's mailq, or one JSON array
//   mailhop queue show ID           one message as JSON
//   mailhop queue cat ID            the stored message, byte for byte (CRLF, not stuffed)
//   mailhop queue flush             every deferred message due now (daemon only)
//   mailhop queue retry|hold|release|delete ID
//
// Exit codes (sysexits.h): 0; 65 (EX_DATAERR) for a malformed queue ID, an unreadable envelope
// or retry of a held message; 66 (EX_NOINPUT) for an ID that is not queued; 69
// (EX_UNAVAILABLE) when the daemon runs but its admin API does not answer; 75 (EX_TEMPFAIL)
// when the spool lock changed hands meanwhile; 77 (EX_NOPERM) for a spool that may not be
// read; 78 (EX_CONFIG) for a bad configuration.
//
// SECURITY: envelopes hold text from the network (the next hop's replies, HELO names). The text
// listing replaces control bytes, so a reply cannot drive the terminal; JSON strings are made
// valid UTF-8. list, show and cat never write to the spool.
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

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "cli/commands.hpp"
#include "mailhop/admin/client.hpp"
#include "mailhop/admin/queue_json.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/spool/lock.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::cli {

namespace {

namespace json = boost::json;

// The configuration, its spool, and whether a daemon runs on it; or an exit code after saying
// why not.
struct Target {
  std::shared_ptr<const config::Config> config;
  std::filesystem::path root;
  bool daemon = false;  // the spool lock is held: talk to the admin API
};

std::optional<Target> load_target(const std::string& file, int& exit_code) {
  auto path = config::resolve_path(file.empty() ? std::nullopt : std::optional<std::string>(file));
  auto result = config::load_file(path);
  if (!result.config) {
    for (const auto& e : result.errors) std::cerr << e.to_string() << '\n';
    exit_code = EX_CONFIG;
    return std::nullopt;
  }
  Target t;
  t.root = result.config->spool_path;
  t.config = std::make_shared<const config::Config>(std::move(*result.config));
  std::error_code ec;
  if (std::filesystem::exists(t.root, ec) && ::access(t.root.c_str(), R_OK | X_OK) != 0) {
    std::cerr << "mailhop queue: cannot read the spool " << t.root.string() << ": " << std::strerror(errno) << '\n';
    exit_code = EX_NOPERM;
    return std::nullopt;
  }
  t.daemon = spool::SpoolLock::held_elsewhere(t.root);
  return t;
}

// One admin API call; nullopt (and the exit code) when the daemon does not answer.
std::optional<admin::ClientResponse> call(const Target& t, const std::string& method, const std::string& target,
                                          int& exit_code) {
  auto r = admin::request(*t.config, method, target);
  if (r.status == 0) {
    std::cerr << "mailhop queue: the daemon holds the spool lock but its admin API does not answer: " << r.error << '\n';
    exit_code = EX_UNAVAILABLE;
    return std::nullopt;
  }
  return r;
}

// The "error" of a JSON error body, or the body.
std::string api_error(const admin::ClientResponse& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("error") && v.as_object().at("error").is_string())
    return std::string(v.as_object().at("error").as_string());
  return r.body;
}

int exit_code_for_status(int status) {
  switch (status) {
    case 200: case 202: return EX_OK;
    case 400: case 409: return EX_DATAERR;
    case 404: return EX_NOINPUT;
    case 401: return EX_NOPERM;
    default: return EX_UNAVAILABLE;
  }
}

// The fields the text listing shows, back from the API's JSON.
spool::Envelope from_json(const json::object& o) {
  spool::Envelope e;
  auto str = [&o](const char* k) -> std::string {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  if (auto id = spool::QueueId::parse(str("id"))) e.id = *id;
  e.sender = str("sender");
  if (auto* v = o.if_contains("size"); v && v->is_number()) e.size = v->to_number<std::uint64_t>();
  if (auto* v = o.if_contains("attempts"); v && v->is_number()) e.attempts = v->to_number<unsigned>();
  if (auto t = util::parse_rfc3339(str("arrival"))) e.arrival = *t;
  if (auto t = util::parse_rfc3339(str("next_attempt"))) e.next_attempt = *t;
  if (auto* v = o.if_contains("last_error"); v && v->is_string()) e.last_error = std::string(v->as_string());
  if (auto* v = o.if_contains("held"); v && v->is_bool()) e.held = v->as_bool();
  if (auto* v = o.if_contains("recipients"); v && v->is_array()) {
    for (const auto& rv : v->as_array()) {
      if (!rv.is_object()) continue;
      const auto& ro = rv.as_object();
      spool::Recipient r;
      if (auto* a = ro.if_contains("address"); a && a->is_string()) r.address = std::string(a->as_string());
      std::string state = ro.if_contains("state") && ro.at("state").is_string() ? std::string(ro.at("state").as_string()) : "";
      r.state = state == "sent" ? spool::RecipientState::sent
                : state == "failed" ? spool::RecipientState::failed : spool::RecipientState::pending;
      if (auto* l = ro.if_contains("last_reply"); l && l->is_string()) r.last_reply = std::string(l->as_string());
      e.recipients.push_back(std::move(r));
    }
  }
  return e;
}

// For the terminal: control bytes shown as '?'.
std::string printable(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return out;
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
  auto t = load_target(file, exit_code);
  if (!t) return exit_code;
  std::vector<spool::Envelope> queue;
  if (t->daemon) {
    auto r = call(*t, "GET", "/api/queue", exit_code);
    if (!r) return exit_code;
    if (r->status != 200) {
      std::cerr << "mailhop queue list: " << api_error(*r) << '\n';
      return exit_code_for_status(r->status);
    }
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_array()) {
      std::cerr << "mailhop queue list: the admin API answered something that is not a JSON array\n";
      return EX_PROTOCOL;
    }
    if (as_json) {
      std::cout << json::serialize(v) << '\n';
      std::cout << std::flush;
      return std::cout ? EX_OK : EX_IOERR;
    }
    for (const auto& item : v.as_array())
      if (item.is_object()) queue.push_back(from_json(item.as_object()));
  } else {
    spool::Spool spool({t->root, true});  // never open()ed: nothing is created or changed
    queue = spool.list();
    if (as_json) {
      std::cout << json::serialize(admin::to_json(queue)) << '\n';
      std::cout << std::flush;
      return std::cout ? EX_OK : EX_IOERR;
    }
  }
  print_text(queue);
  std::cout << std::flush;
  return std::cout ? EX_OK : EX_IOERR;
}

std::optional<spool::QueueId> parse_id(const char* command, const std::string& id_text) {
  auto id = spool::QueueId::parse(id_text);
  if (!id)
    std::cerr << "mailhop queue " << command << ": '" << printable(id_text) << "' is not a queue ID (26 hex digits, as "
              << "`mailhop queue list` shows them)\n";
  return id;
}

int show(const std::string& file, const std::string& id_text) {
  auto id = parse_id("show", id_text);
  if (!id) return EX_DATAERR;
  int exit_code = EX_OK;
  auto t = load_target(file, exit_code);
  if (!t) return exit_code;
  if (t->daemon) {
    auto r = call(*t, "GET", "/api/queue/" + id->str(), exit_code);
    if (!r) return exit_code;
    if (r->status != 200) {
      std::cerr << "mailhop queue show: " << api_error(*r) << '\n';
      return exit_code_for_status(r->status);
    }
    std::cout << r->body << std::flush;
    return std::cout ? EX_OK : EX_IOERR;
  }
  spool::Spool spool({t->root, true});
  if (!spool.contains(*id)) {
    std::cerr << "mailhop queue show: no message " << id->str() << " in the queue " << t->root.string() << '\n';
    return EX_NOINPUT;
  }
  std::string error;
  auto envelope = spool.load(*id, &error);
  if (!envelope) {
    std::cerr << "mailhop queue show: cannot read the envelope of " << id->str() << ": " << error << '\n';
    return EX_DATAERR;
  }
  std::cout << json::serialize(admin::to_json(*envelope)) << '\n' << std::flush;
  return std::cout ? EX_OK : EX_IOERR;
}

int flush(const std::string& file) {
  int exit_code = EX_OK;
  auto t = load_target(file, exit_code);
  if (!t) return exit_code;
  if (!t->daemon) {
    std::cout << "mailhop is not running: nothing to flush (queued messages are tried when it starts)\n";
    return EX_OK;
  }
  auto r = call(*t, "POST", "/api/queue/flush", exit_code);
  if (!r) return exit_code;
  if (r->status != 200) {
    std::cerr << "mailhop queue flush: " << api_error(*r) << '\n';
    return exit_code_for_status(r->status);
  }
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  std::uint64_t n = 0;
  if (!ec && v.is_object() && v.as_object().contains("due_now")) n = v.as_object().at("due_now").to_number<std::uint64_t>();
  std::cout << n << " deferred message(s) due now\n";
  return EX_OK;
}

// hold, release, retry, delete on the spool itself (no daemon): the spool lock held, the
// envelope replaced through the spool's own durable update.
boost::asio::awaitable<std::error_code> apply_offline(spool::Spool& spool, spool::Envelope envelope, std::string action) {
  if (action == "delete") {
    auto ec = co_await spool.remove(envelope.id);
    co_return ec;
  }
  if (action == "hold") envelope.held = true;
  if (action == "release") envelope.held = false;
  if (action == "release" || action == "retry") envelope.next_attempt = std::chrono::system_clock::now();
  auto ec = co_await spool.update(envelope);
  co_return ec;
}

int control(const std::string& file, const std::string& action, const std::string& id_text) {
  auto id = parse_id(action.c_str(), id_text);
  if (!id) return EX_DATAERR;
  int exit_code = EX_OK;
  auto t = load_target(file, exit_code);
  if (!t) return exit_code;
  const char* done = action == "hold" ? "held" : action == "release" ? "released" : action == "retry" ? "due now" : "deleted";
  if (t->daemon) {
    auto r = action == "delete" ? call(*t, "DELETE", "/api/queue/" + id->str(), exit_code)
                                : call(*t, "POST", "/api/queue/" + id->str() + "/" + action, exit_code);
    if (!r) return exit_code;
    if (r->status != 200 && r->status != 202) {
      std::cerr << "mailhop queue " << action << ": " << api_error(*r) << '\n';
      return exit_code_for_status(r->status);
    }
    std::cout << id->str() << ": " << done << (r->status == 202 ? " when its current delivery attempt ends" : "") << '\n';
    return EX_OK;
  }
  auto attempt = spool::SpoolLock::try_acquire(t->root);
  if (attempt.status == spool::SpoolLock::Status::held_elsewhere) {
    std::cerr << "mailhop queue " << action << ": the daemon just started (pid " << attempt.holder << "); try again\n";
    return EX_TEMPFAIL;
  }
  if (attempt.status == spool::SpoolLock::Status::error) {
    std::cerr << "mailhop queue " << action << ": cannot lock the spool " << t->root.string() << ": "
              << attempt.error.message() << '\n';
    return EX_NOPERM;
  }
  spool::Spool spool({t->root, true});
  if (!spool.contains(*id)) {
    std::cerr << "mailhop queue " << action << ": no message " << id->str() << " in the queue " << t->root.string() << '\n';
    return EX_NOINPUT;
  }
  std::string error;
  auto envelope = spool.load(*id, &error);
  if (!envelope) {
    std::cerr << "mailhop queue " << action << ": cannot read the envelope of " << id->str() << ": " << error << '\n';
    return EX_DATAERR;
  }
  if (action == "retry" && envelope->held) {
    std::cerr << "mailhop queue retry: " << id->str() << " is held: release it\n";
    return EX_DATAERR;
  }
  try {
    spool.open();
  } catch (const std::system_error& e) {
    std::cerr << "mailhop queue " << action << ": " << e.what() << '\n';
    return EX_NOPERM;
  }
  boost::asio::io_context io;
  auto result = boost::asio::co_spawn(io, apply_offline(spool, *envelope, action), boost::asio::use_future);
  io.run();
  if (auto ec = result.get()) {
    std::cerr << "mailhop queue " << action << ": " << id->str() << ": " << ec.message() << '\n';
    return EX_IOERR;
  }
  std::cout << id->str() << ": " << done << " (mailhop is not running: the spool was changed directly)\n";
  return EX_OK;
}

int cat(const std::string& file, const std::string& id_text) {
  auto id = spool::QueueId::parse(id_text);
  if (!id) {
    std::cerr << "mailhop queue cat: '" << printable(id_text) << "' is not a queue ID (26 hex digits, as "
              << "`mailhop queue list` shows them)\n";
    return EX_DATAERR;
  }
  int exit_code = EX_OK;
  auto t = load_target(file, exit_code);
  if (!t) return exit_code;
  spool::Spool spool({t->root, true});  // content is written once and never changed: read it directly
  if (!spool.contains(*id)) {
    std::cerr << "mailhop queue cat: no message " << id->str() << " in the queue " << t->root.string() << '\n';
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
  auto* queue = app.add_subcommand(
      "queue", "Inspect and manage the queue (through the daemon's admin API while it runs, else on the spool)");
  queue->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  const std::string config_help = "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)";
  queue->add_option("-c,--config", *file, config_help);
  queue->footer("Exit status: 0; 65 malformed ID, unreadable envelope or retry of a held message; 66 no such "
                "message; 69 daemon not answering; 75 try again; 77 spool not readable; 78 bad configuration.");

  auto* list_cmd = queue->add_subcommand("list", "List queued messages, like mailq ('!' after an ID: held)");
  auto as_json = std::make_shared<bool>(false);
  list_cmd->add_flag("--json", *as_json,
                     "one JSON array: id, sender, recipients [{address, state, last_reply}], size, arrival, "
                     "attempts, next_attempt, last_error, held, …");
  list_cmd->add_option("-c,--config", *file, config_help);
  list_cmd->callback([&exit_code, file, as_json] { exit_code = list(*file, *as_json); });

  auto id = std::make_shared<std::string>();
  auto* show_cmd = queue->add_subcommand("show", "Show one queued message's envelope as JSON");
  show_cmd->add_option("ID", *id, "queue ID, as `mailhop queue list` shows it")->required();
  show_cmd->add_option("-c,--config", *file, config_help);
  show_cmd->callback([&exit_code, file, id] { exit_code = show(*file, *id); });

  auto* cat_cmd = queue->add_subcommand("cat", "Print a queued message as stored (CRLF line ends, dots not stuffed)");
  cat_cmd->add_option("ID", *id, "queue ID, as `mailhop queue list` shows it")->required();
  cat_cmd->add_option("-c,--config", *file, config_help);
  cat_cmd->callback([&exit_code, file, id] { exit_code = cat(*file, *id); });

  auto* flush_cmd = queue->add_subcommand("flush", "Try every deferred message now (held ones stay held)");
  flush_cmd->add_option("-c,--config", *file, config_help);
  flush_cmd->callback([&exit_code, file] { exit_code = flush(*file); });

  const std::pair<const char*, const char*> actions[] = {
      {"retry", "Try one deferred message now"},
      {"hold", "Hold a message: never delivered until released"},
      {"release", "Release a held message (tried at once)"},
      {"delete", "Delete a message from the queue, without a bounce"},
  };
  for (const auto& [name, help] : actions) {
    auto* cmd = queue->add_subcommand(name, help);
    cmd->add_option("ID", *id, "queue ID, as `mailhop queue list` shows it")->required();
    cmd->add_option("-c,--config", *file, config_help);
    cmd->callback([&exit_code, file, id, action = std::string(name)] { exit_code = control(*file, action, *id); });
  }
}

}  // namespace mailhop::cli
