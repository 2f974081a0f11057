// The subcommands of the mailhop binary. Each registers itself on the top-level CLI11 app and
// stores its exit code (sysexits.h) in `exit_code` when it runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mailhop::cli {

void add_run_command(CLI::App& app, int& exit_code);
void add_check_command(CLI::App& app, int& exit_code);
void add_queue_command(CLI::App& app, int& exit_code);
void add_health_command(CLI::App& app, int& exit_code);
void add_sink_command(CLI::App& app, int& exit_code);
void add_passwd_command(CLI::App& app, int& exit_code);
void add_oauth2_command(CLI::App& app, int& exit_code);
void add_sendmail_command(CLI::App& app, int& exit_code);
// argv as `mailhop` understands it: through a link named sendmail, "sendmail" inserted as the
// subcommand; named mailq, "queue list" (sendmail.cpp).
std::vector<std::string> program_name_arguments(int argc, char** argv);

}  // namespace mailhop::cli
