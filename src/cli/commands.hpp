// The subcommands of the mailhop binary. Each registers itself on the top-level CLI11 app and
// stores its exit code (sysexits.h) in `exit_code` when it runs.
#pragma once

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace mailhop::cli {

void add_run_command(CLI::App& app, int& exit_code);
void add_check_command(CLI::App& app, int& exit_code);
void add_queue_command(CLI::App& app, int& exit_code);
void add_sink_command(CLI::App& app, int& exit_code);
void add_passwd_command(CLI::App& app, int& exit_code);

}  // namespace mailhop::cli
