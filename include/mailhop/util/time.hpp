// Time formats used on the wire and on disk.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailhop::util {

using SystemTime = std::chrono::system_clock::time_point;

// "2026-11-22T03:11:47Z" (RFC 3339, UTC, whole seconds).
std::string rfc3339(SystemTime t);
// Inverse of rfc3339(); also accepts fractional seconds and a numeric offset.
std::optional<SystemTime> parse_rfc3339(std::string_view text);
// "Sun, 22 Nov 2026 03:11:47 +0000" (RFC 5322 §3.3), for Date: and Received: headers.
std::string rfc5322_date(SystemTime t);

}  // namespace mailhop::util
