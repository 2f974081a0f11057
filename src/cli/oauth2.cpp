// mailhop oauth2 token -c FILE: fetches one OAuth2 access token with the configuration's
// relay.oauth2 settings (token endpoint or token_command), exactly as the daemon would, and
// prints how long it is valid — never the token. A rotated refresh token is written back to
// refresh_token_file like the daemon does. To test a setup before the first message waits.
//
// Exit codes (sysexits.h): 0 with a token; 69 (EX_UNAVAILABLE) when none could be had (the
// reason on stderr); 78 (EX_CONFIG) for a bad configuration or one without OAuth2.
#include <sysexits.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/chrono.h>

#include "cli/commands.hpp"
#include "mailhop/config/loader.hpp"
#include "mailhop/delivery/token_provider.hpp"

namespace mailhop::cli {

namespace asio = boost::asio;

void add_oauth2_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("oauth2", "OAuth2 for the next hop (relay.auth: xoauth2 or oauthbearer)");
  sub->require_subcommand(1);
  auto* token = sub->add_subcommand("token", "Fetch an access token once and print its lifetime (not the token)");
  auto file = std::make_shared<std::string>();
  token->add_option("-c,--config", *file,
                    "configuration file (default: $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml)");
  token->footer("Exit status: 0 with a token, 69 (EX_UNAVAILABLE) without, 78 (EX_CONFIG) for a bad configuration.");
  token->callback([&exit_code, file] {
    auto path = config::resolve_path(file->empty() ? std::nullopt : std::optional<std::string>(*file));
    auto loaded = config::load_file(path);
    for (const auto& e : loaded.errors) std::cerr << e.to_string() << '\n';
    if (!loaded.config) {
      exit_code = EX_CONFIG;
      return;
    }
    const auto& relay = loaded.config->relay;
    if (!relay.oauth2) {
      std::cerr << path << ": relay.oauth2 is not set (relay.auth is " << config::to_string(relay.auth) << ")\n";
      exit_code = EX_CONFIG;
      return;
    }
    delivery::TokenProvider provider(relay);
    asio::io_context io;
    delivery::TokenResult result;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { result = co_await provider.token(); }, asio::detached);
    io.run();
    if (!result.token) {
      std::cerr << "no access token: " << result.error << '\n';
      exit_code = EX_UNAVAILABLE;
      return;
    }
    auto left = std::chrono::duration_cast<std::chrono::seconds>(result.expires - std::chrono::steady_clock::now());
    auto at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + left);
    std::cout << "access token for " << relay.username.value_or("(no relay.username)") << " (" << result.token->size()
              << " bytes) valid for " << left.count() << " s, until "
              << fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(at)) << '\n';
    exit_code = EX_OK;
  });
}

}  // namespace mailhop::cli
