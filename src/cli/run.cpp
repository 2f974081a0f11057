// mailhop run: placeholder until its issue lands.
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"

namespace mailhop::cli {

void add_run_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("run", "not implemented yet");
  sub->allow_extras();
  sub->callback([&exit_code] {
    std::cerr << "mailhop run: not implemented yet\n";
    exit_code = EX_SOFTWARE;
  });
}

}  // namespace mailhop::cli
