// SIGHUP: the reload of `mailhop run` (see reload.hpp).
#include "reload.hpp"

#include <spdlog/spdlog.h>

#include "mailhop/config/diff.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/util/log.hpp"

namespace mailhop::cli {
namespace {

const std::string& shown(const std::string& path) {
  static const std::string none = "(no file: defaults and environment)";
  return path.empty() ? none : path;
}

// The server certificate for `next`: the running one read again when the files are the same,
// a new one for new files, none when tls is no longer configured. A certificate that does not
// load keeps the running one, and `next.tls` then names its files again.
std::shared_ptr<tls::ServerContextHolder> certificate(const Running& running, config::Config& next) {
  const auto& files = next.tls;
  if (!files.cert_file || !files.key_file) {
    if (running.server_tls) spdlog::info("SIGHUP: tls.cert_file is no longer set: STARTTLS is not offered to new sessions");
    return nullptr;
  }
  if (running.server_tls && files == running.config->tls) {
    if (auto error = running.server_tls->reload()) {
      spdlog::error("SIGHUP: the TLS certificate was not reloaded, the old one stays in use: {}", *error);
    } else {
      spdlog::info("SIGHUP: TLS certificate reloaded from {}", *files.cert_file);
    }
    return running.server_tls;
  }
  try {
    auto holder = std::make_shared<tls::ServerContextHolder>(*files.cert_file, *files.key_file);
    spdlog::info("SIGHUP: TLS certificate reloaded from {}", *files.cert_file);
    return holder;
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: the TLS certificate was not reloaded, the old one stays in use: {}", e.what());
    next.tls = running.config->tls;
    return running.server_tls;
  }
}

// The users for AUTH, likewise.
std::shared_ptr<server::Authenticator> users(const Running& running, config::Config& next) {
  const auto& file = next.auth.users_file;
  if (!file) {
    if (running.auth) spdlog::info("SIGHUP: auth.users_file is no longer set: AUTH is not offered to new sessions");
    return nullptr;
  }
  if (running.auth && file == running.config->auth.users_file) {
    if (auto error = running.auth->reload()) {
      spdlog::error("SIGHUP: the users file was not reloaded, the old users stay: {}", *error);
    } else {
      spdlog::info("SIGHUP: users reloaded from {}", *file);
    }
    return running.auth;
  }
  try {
    auto auth = std::make_shared<server::Authenticator>(*file);
    spdlog::info("SIGHUP: users reloaded from {}", *file);
    return auth;
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: the users file was not reloaded, the old users stay: auth.users_file: {}", e.what());
    next.auth = running.config->auth;
    return running.auth;
  }
}

}  // namespace

void reload(Running& running, server::Server& server, delivery::DeliveryService& delivery, admin::AdminServer& admin) {
  auto loaded = config::load_file(running.path);
  if (!loaded.config) {
    spdlog::error("SIGHUP: the configuration {} is not valid; the running configuration stays in use:",
                  shown(running.path));
    for (const auto& e : loaded.errors) spdlog::error("SIGHUP: {}", e.to_string());
    return;
  }
  for (auto w : loaded.warnings) spdlog::warn("SIGHUP: {}", w.to_string());
  const auto changes = config::diff(*running.config, *loaded.config);
  config::Config next = config::reloadable(*running.config, *loaded.config);

  // First what can still refuse the whole reload: the relay TLS client context (relay.ca_file
  // is read again even when unchanged: it may have been replaced).
  try {
    delivery.reconfigure(std::make_shared<const config::Config>(next));
  } catch (const std::exception& e) {
    if (next.relay != running.config->relay) {
      spdlog::error("SIGHUP: the new relay settings cannot be used ({}); the running configuration stays in use",
                    e.what());
      return;
    }
    spdlog::error("SIGHUP: the relay CA certificates were not reloaded, the old ones stay in use: {}", e.what());
  }

  auto server_tls = certificate(running, next);
  auto auth = users(running, next);
  auto config = std::make_shared<const config::Config>(std::move(next));
  server.reconfigure(config, server_tls, auth);
  admin.reconfigure(config);  // /readyz checks and probes the next hop now in use
  if (config->log != running.config->log) util::setup_logging(config->log.level, config->log.format);

  std::size_t restart = 0;
  for (const auto& change : changes) {
    if (change.needs_restart) {
      ++restart;
      spdlog::warn("SIGHUP: {} changed, but needs a restart to take effect (the running value stays)", change.key);
    } else {
      spdlog::info("SIGHUP: {} changed: applied to new sessions and relay connections", change.key);
    }
  }
  spdlog::info("SIGHUP: configuration reloaded from {} ({} change(s) applied, {} need a restart)", shown(running.path),
               changes.size() - restart, restart);
  running = Running{running.path, std::move(config), std::move(server_tls), std::move(auth)};
}

}  // namespace mailhop::cli
