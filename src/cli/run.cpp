// mailhop run: the daemon, in the foreground, logging to stderr. Wires the modules into one
// io_context: configuration → logging → spool (open, recycle temporaries) → server and delivery →
// the queue read on its own thread while mail is accepted → signals.
//
// Exit status (sysexits.h): 0 after SIGTERM/SIGINT and a graceful stop; 78 (EX_CONFIG) for a
// configuration error (also: a socket passed by the service manager that no listen entry
// names); 73 (EX_CANTCREAT) when the spool cannot be opened or written; 69
// (EX_UNAVAILABLE) when a listener address is in use or not available; 77 (EX_NOPERM) when
// binding is not permitted; 71 (EX_OSERR) for other system errors at start-up.
#include <signal.h>
#include <sysexits.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "cli/reload.hpp"
#include "mailhop/admin/server.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/delivery/delivery.hpp"
#include "mailhop/server/server.hpp"
#include "mailhop/spool/lock.hpp"
#include "mailhop/spool/spool.hpp"
#include "mailhop/tls/server_context.hpp"
#include "mailhop/util/listen_fds.hpp"
#include "mailhop/util/log.hpp"
#include "mailhop/util/sd_notify.hpp"

namespace mailhop::cli {
namespace {

namespace asio = boost::asio;

std::string to_text(const asio::ip::tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

int exit_code_for_bind(const std::error_code& ec) {
  if (ec == std::errc::permission_denied) return EX_NOPERM;
  if (ec == std::errc::address_in_use || ec == std::errc::address_not_available) return EX_UNAVAILABLE;
  return EX_OSERR;
}

// The spool must exist and be writable before the first client hears 220.
int open_spool(spool::Spool& spool) {
  try {
    spool.open();
  } catch (const std::system_error& e) {
    spdlog::critical("cannot open the spool {}: {}", spool.root().string(), e.what());
    return EX_CANTCREAT;
  }
  if (::access(spool.root().c_str(), W_OK | X_OK) != 0) {
    std::error_code ec(errno, std::generic_category());
    spdlog::critical("the spool {} is not writable: {}", spool.root().string(), ec.message());
    return EX_CANTCREAT;
  }
  return EX_OK;
}

int run_daemon(const std::string& path) {
  auto loaded = config::load_file(path);
  for (auto w : loaded.warnings) {
    w.key = w.key.empty() ? "warning" : "warning: " + w.key;
    std::cerr << w.to_string() << '\n';
  }
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
    return EX_CONFIG;
  }
  auto config = std::make_shared<const config::Config>(std::move(*loaded.config));
  util::setup_logging(config->log.level, config->log.format);

  // Socket activation (systemd/mailhop.socket): the listening sockets the service manager
  // passed, taken (and LISTEN_* unset) before any other thread runs.
  std::vector<util::InheritedSocket> inherited;
  try {
    inherited = util::take_listen_fds();
  } catch (const std::invalid_argument& e) {
    spdlog::critical("socket activation: {}", e.what());
    return EX_CONFIG;
  }

  // The server certificate, loaded before anything listens: a bad one is a configuration error.
  std::shared_ptr<tls::ServerContextHolder> server_tls;
  if (config->tls.cert_file && config->tls.key_file) {
    try {
      server_tls = std::make_shared<tls::ServerContextHolder>(*config->tls.cert_file, *config->tls.key_file);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      return EX_CONFIG;
    }
  }

  // The users for AUTH, likewise.
  std::shared_ptr<server::Authenticator> auth;
  if (config->auth.users_file) {
    try {
      auth = std::make_shared<server::Authenticator>(*config->auth.users_file);
    } catch (const std::exception& e) {
      spdlog::critical("auth.users_file: {}", e.what());
      return EX_CONFIG;
    }
  }

  spool::Spool spool({config->spool_path, true});
  if (int rc = open_spool(spool); rc != EX_OK) return rc;
  // One daemon per spool, taken before recovery (which clears tmp/, where a running daemon
  // writes). flock: the lock dies with the process, so a restart after kill -9 is never refused.
  auto spool_lock = spool::SpoolLock::try_acquire(spool.root());
  if (spool_lock.status != spool::SpoolLock::Status::acquired) {
    if (spool_lock.status == spool::SpoolLock::Status::held_elsewhere)
      spdlog::critical("another mailhop (pid {}) is running on the spool {}",
                       spool_lock.holder.empty() ? "?" : spool_lock.holder, spool.root().string());
    else
      spdlog::critical("cannot lock the spool {}: {}", spool.root().string(), spool_lock.error.message());
    return EX_TEMPFAIL;
  }
  // Start-up scan, first phase: temporaries recycled, the queue's envelopes noted but not read
  // (quick whatever the queue's length). The second phase reads them while mail is accepted.
  try {
    spool.recover_temporaries();
  } catch (const std::exception& e) {
    spdlog::critical("cannot read the spool {}: {}", spool.root().string(), e.what());
    return EX_OSERR;
  }

  const unsigned threads = config->threads != 0 ? config->threads : std::max(1u, std::thread::hardware_concurrency());
  asio::io_context io(static_cast<int>(threads));
  delivery::DeliveryService delivery(io, config, spool);
  server::Server server(io, {config, &spool, [&delivery](const spool::Envelope& e) { delivery.enqueue(e); }, server_tls, auth});
  admin::AdminServer admin_server(io, {config, &spool, &delivery, [&server] { return server.local_endpoints(); }});
  try {
    server.start(std::move(inherited));
    admin_server.start();
  } catch (const std::invalid_argument& e) {  // a passed socket that no listen entry names
    spdlog::critical("{}", e.what());
    return EX_CONFIG;
  } catch (const std::system_error& e) {
    spdlog::critical("{}", e.what());  // "cannot listen on 127.0.0.1:25 (bind): Address already in use"
    return exit_code_for_bind(e.code());
  }
  try {
    delivery.start({});
  } catch (const std::exception& e) {  // e.g. relay.ca_file unreadable
    spdlog::critical("cannot start delivery: {}", e.what());
    return EX_CONFIG;
  }
  // Start-up scan, second phase, on its own thread while the listeners accept: the envelopes
  // queued before this start are read and handed to delivery in batches as they come (a long
  // queue does not keep the port closed; messages received meanwhile are not part of the scan).
  // It logs what it quarantined and a summary line. Joined before delivery and spool go away.
  std::thread queue_scan([&spool, &delivery] {
    try {
      spool.scan_queue([&delivery](std::vector<spool::Envelope>& batch) {
        for (const auto& envelope : batch) delivery.enqueue(envelope);
      });
    } catch (const std::exception& e) {
      spdlog::error("reading the queue at start-up failed: {}; messages not read now are found at the next start",
                    e.what());
    }
  });
  struct JoinOnExit {
    std::thread& thread;
    ~JoinOnExit() {
      if (thread.joinable()) thread.join();
    }
  } join_queue_scan{queue_scan};

  // SIGHUP: reload (reload.cpp). SIGTERM/SIGINT: stop accepting, let sessions finish or time
  // out, stop delivery (connecting relay connections at once, transactions within
  // delivery.shutdown_grace); the io_context then runs out of work and run() returns. After the
  // first one the default action is restored, so a second SIGTERM ends a shutdown that takes
  // too long.
  Running running{path, config, server_tls, auth};
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
          util::sd_notify_reloading();
          reload(running, server, delivery, admin_server);
          util::sd_notify("READY=1");
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{} received: shutting down (open sessions: {})", signo == SIGTERM ? "SIGTERM" : "SIGINT",
                     server.sessions());
        boost::system::error_code ignored;
        signals.clear(ignored);
        util::sd_notify_stopping();
        ::signal(SIGHUP, SIG_IGN);
        server.stop();
        admin_server.stop();
        delivery.stop();
      };
  signals.async_wait(on_signal);

  std::string listening;
  for (const auto& ep : server.local_endpoints()) listening += (listening.empty() ? "" : ", ") + to_text(ep);
  spdlog::info("mailhop {} started; listening on {} ({} thread{})", MAILHOP_VERSION,
               listening.empty() ? std::string("nothing") : listening, threads, threads == 1 ? "" : "s");

  // systemd (Type=notify): ready only now that every listener accepts. A no-op without NOTIFY_SOCKET.
  util::sd_notify_ready("listening on " + listening);

  int rc = EX_OK;
  auto run = [&io, &rc] {
    try {
      io.run();
    } catch (const std::exception& e) {
      spdlog::critical("internal error: {}", e.what());
      rc = EX_SOFTWARE;
      io.stop();
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  // run() returns with spool operations or password checks in flight only after io.stop() (an
  // internal error): their threads touch `io` until they have handed the result over, so they
  // finish before `io` is destroyed (util/run_on.hpp). Otherwise nothing is in flight.
  spool.join();
  if (auth) auth->join();
  if (rc == EX_OK) spdlog::info("mailhop stopped");
  return rc;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("run", "Run the relay daemon in the foreground, logging to stderr");
  auto file = std::make_shared<std::string>();
  sub->add_option("-c,--config", *file,
                  "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)");
  sub->footer(
      "SIGTERM or SIGINT stops gracefully (exit 0): no new connections, relay connections that are\n"
      "connecting or idle closed at once, transactions in progress given delivery.shutdown_grace.\n"
      "SIGHUP reloads the configuration file: certificates, users, allowed networks, limits, log\n"
      "level, relay and retry settings apply to new sessions and relay connections; keys that need a\n"
      "restart (listen, spool.path, threads, admin.listen, admin.token_file, delivery.workers) are\n"
      "logged as such. An invalid file changes nothing.\n"
      "Exit status: 78 (EX_CONFIG) for configuration errors, 73 (EX_CANTCREAT) when the spool\n"
      "cannot be opened, 69 (EX_UNAVAILABLE) when a listen address is in use.");
  sub->callback([&exit_code, file] {
    exit_code = run_daemon(config::resolve_path(file->empty() ? std::nullopt : std::optional<std::string>(*file)));
  });
}

}  // namespace mailhop::cli
