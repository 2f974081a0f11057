// mailhop check: placeholder until its issue lands.
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"

namespace mailhop::cli {

void add_check_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("check", "not implemented yet");
  sub->allow_extras();
  sub->callback([&exit_code] {
    std::cerr << "mailhop check: not implemented yet\n";
    exit_code = EX_SOFTWARE;
  });
}

}  // namespace mailhop::cli
