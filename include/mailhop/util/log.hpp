// Logging set-up: spdlog to stderr, as text or as one JSON object per line.
#pragma once

#include <string_view>

namespace mailhop::util {

enum class LogFormat { text, json };

// level: trace | debug | info | warn | error. Safe to call again (SIGHUP changes the level).
void setup_logging(std::string_view level, LogFormat format);

}  // namespace mailhop::util
