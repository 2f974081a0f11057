// mailhop health: the daemon's readiness (GET /readyz on admin.listen) as an exit status, for
// container health checks (Docker HEALTHCHECK, Kubernetes exec probes).
//
//   mailhop health -c FILE   prints the JSON of /readyz; exit 0 when ready (200), 1 otherwise
//                            (not ready, not running, or the configuration does not load).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "mailhop/admin/client.hpp"
#include "mailhop/config/loader.hpp"

namespace mailhop::cli {

namespace {

int health(const std::string& file) {
  auto path = config::resolve_path(file.empty() ? std::nullopt : std::optional<std::string>(file));
  auto loaded = config::load_file(path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
    return 1;
  }
  auto r = admin::request(*loaded.config, "GET", "/readyz", std::chrono::seconds(20));
  if (r.status == 0) {
    std::cerr << "mailhop health: not running? " << r.error << '\n';
    return 1;
  }
  std::cout << r.body << std::flush;
  return r.status == 200 ? 0 : 1;
}

}  // namespace

void add_health_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("health", "Ask the running daemon whether it is ready (GET /readyz); exit 0 when it is");
  auto file = std::make_shared<std::string>();
  sub->add_option("-c,--config", *file, "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)");
  sub->footer("Exit status: 0 ready; 1 not ready, not running, or a bad configuration.");
  sub->callback([&exit_code, file] { exit_code = health(*file); });
}

}  // namespace mailhop::cli
