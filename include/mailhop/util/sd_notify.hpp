// The systemd notify protocol (sd_notify(3)), spoken directly: one datagram of "KEY=VALUE"
// lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name written with
// a leading '@'). No libsystemd. Without $NOTIFY_SOCKET (not started by systemd with
// Type=notify) every call does nothing.
//
// Used by `mailhop run` (systemd/mailhop.service is Type=notify): READY=1 once the listeners
// accept, STATUS=… with the queue size, RELOADING=1 around SIGHUP, STOPPING=1 on SIGTERM.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace mailhop::util {

// Sends `state` ("READY=1\nSTATUS=listening") to $NOTIFY_SOCKET. Returns an empty error code
// when sent or when there is no $NOTIFY_SOCKET; the error otherwise (for a log line: a failed
// notification must not stop the daemon).
std::error_code sd_notify(std::string_view state);

// The same to an explicit socket name (path or "@abstract"), for tests.
std::error_code sd_notify_to(std::string_view socket_name, std::string_view state);

// Convenience: READY=1 with a STATUS; STATUS alone; STOPPING=1; RELOADING=1.
std::error_code sd_notify_ready(std::string_view status);
std::error_code sd_notify_status(std::string_view status);
std::error_code sd_notify_stopping();
std::error_code sd_notify_reloading();

}  // namespace mailhop::util
