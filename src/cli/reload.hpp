// SIGHUP for `mailhop run`: reads the configuration file again (same path, same MAILHOP_*
// variables) and applies what can change while running; see docs/operations.md "Signals".
//
// An invalid file changes nothing (every error is logged as FILE:LINE: key: message). A valid
// one is applied in this order: the relay settings (their TLS client context is made first; an
// unreadable relay.ca_file also changes nothing), the server certificate and the users file
// (one that does not load keeps the old one; the rest still applies), then the configuration
// for new sessions and for the admin server's requests (/readyz), and the log level and
// format. One line per changed key says whether it is applied or needs a restart
// (config/diff.hpp).
#pragma once

#include <memory>
#include <string>

#include "mailhop/admin/server.hpp"
#include "mailhop/config/config.hpp"
#include "mailhop/delivery/delivery.hpp"
#include "mailhop/server/authenticator.hpp"
#include "mailhop/server/server.hpp"
#include "mailhop/tls/server_context.hpp"

namespace mailhop::cli {

struct Running {
  std::string path;  // the configuration file as given ("" when none)
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<tls::ServerContextHolder> server_tls;  // null without tls.cert_file
  std::shared_ptr<server::Authenticator> auth;           // null without auth.users_file
};

// Called on the signal handler's thread; `running` is updated to what is now in use.
void reload(Running& running, server::Server& server, delivery::DeliveryService& delivery, admin::AdminServer& admin);

}  // namespace mailhop::cli
