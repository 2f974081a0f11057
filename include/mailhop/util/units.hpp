// Sizes and durations as they are written in the configuration: "25MiB", "512KiB", "100",
// "5m", "1h", "30s", "5d". Pure functions, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailhop::util {

// Bytes from "N", "NB", "NKiB", "NMiB", "NGiB" (also KB/MB/GB, taken as powers of 1024, and
// lower case). nullopt on anything else or on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

// Duration from "N" (seconds), "Nms", "Ns", "Nm", "Nh", "Nd". nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest exact form: 26214400 -> "25MiB", 1000 -> "1000B".
std::string format_size(std::uint64_t bytes);
// 300000ms -> "5m", 90000ms -> "90s", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace mailhop::util
