// What a reload (SIGHUP) changes: every key whose value differs between the running
// configuration and the newly loaded one, and whether the running daemon can take it (new
// sessions and new relay connections use it) or only a restart can (listeners, spool, threads,
// the admin server, the number of workers, the connection limits).
//
// Keys are named by their path in the file ("relay.timeouts.greeting"); lists count as one key
// ("listen", "allowed_networks", "relay.fallback"), and so does relay.oauth2. Values are not
// part of a Change, so that a log line naming it never shows a secret.
#pragma once

#include <string>
#include <vector>

#include "mailhop/config/config.hpp"

namespace mailhop::config {

struct Change {
  std::string key;
  bool needs_restart = false;
  friend bool operator==(const Change&, const Change&) = default;
};

// In the order of config/mailhop.yaml; empty when nothing changed.
std::vector<Change> diff(const Config& running, const Config& next);

// What the daemon runs with after reloading `next`: `next`, but every key that needs a restart
// keeps its running value (so the configuration in use tells the truth, and the next reload
// still reports such a key until the restart).
Config reloadable(const Config& running, const Config& next);

}  // namespace mailhop::config
