// mailhop check: validates the configuration and prints the effective configuration, secrets
// redacted, each value that is not a default followed by where it came from (# FILE:LINE or
// # MAILHOP_…, the environment variable that overrides it). Exit 0 (EX_OK) when valid; 78
// (EX_CONFIG) with one "FILE:LINE: key: what is wrong" (or "VARIABLE: what is wrong") line per
// problem on stderr when not. Warnings go to stderr and do not change the exit code.
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "mailhop/config/loader.hpp"

namespace mailhop::cli {

void add_check_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand(
      "check", "Validate the configuration and print the effective configuration (secrets redacted)");
  auto file = std::make_shared<std::string>();
  sub->add_option("-c,--config", *file,
                  "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)");
  sub->footer(
      "MAILHOP_<KEY> environment variables override the file (relay.host: MAILHOP_RELAY_HOST).\n"
      "Exit status: 0 when the configuration is valid, 78 (EX_CONFIG) when not.");
  sub->callback([&exit_code, file] {
    auto path = config::resolve_path(file->empty() ? std::nullopt : std::optional<std::string>(*file));
    auto result = config::load_file(path);
    for (const auto& e : result.errors) std::cerr << e.to_string() << '\n';
    for (auto w : result.warnings) {  // "FILE:LINE: warning: key: …", as compilers write them
      w.key = w.key.empty() ? "warning" : "warning: " + w.key;
      std::cerr << w.to_string() << '\n';
    }
    if (!result.config) {
      exit_code = EX_CONFIG;
      return;
    }
    std::cout << config::describe(*result.config, result.sources) << std::flush;
    exit_code = EX_OK;
  });
}

}  // namespace mailhop::cli
