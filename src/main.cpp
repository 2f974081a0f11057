// mailhop: a store-and-forward SMTP relay. This file only dispatches to the subcommands in
// src/cli/; see `mailhop --help`.
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mailhop: a store-and-forward SMTP relay", "mailhop"};
  app.set_version_flag("--version", std::string("mailhop ") + MAILHOP_VERSION);
  app.require_subcommand(1);

  int exit_code = EX_SOFTWARE;
  mailhop::cli::add_run_command(app, exit_code);
  mailhop::cli::add_check_command(app, exit_code);
  mailhop::cli::add_queue_command(app, exit_code);
  mailhop::cli::add_health_command(app, exit_code);
  mailhop::cli::add_sink_command(app, exit_code);
  mailhop::cli::add_passwd_command(app, exit_code);
  mailhop::cli::add_oauth2_command(app, exit_code);
  mailhop::cli::add_sendmail_command(app, exit_code);

  // Invoked through the sendmail or mailq link: the arguments of that subcommand.
  auto args = mailhop::cli::program_name_arguments(argc, argv);
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  try {
    app.parse(static_cast<int>(argp.size()), argp.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help, version or the usage error
    return rc == 0 ? EX_OK : EX_USAGE;
  }
  return exit_code;
}
