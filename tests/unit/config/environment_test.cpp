// Configuration from the environment: MAILHOP_<KEY> overrides, lists, MAILHOP_LISTEN, the
// direct password, errors naming the variable, unknown variables, sources, the no-file mode.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <set>

#include "helpers.hpp"
#include "mailhop/config/redact.hpp"

using namespace mailhop::config;
using namespace mailhop::config::test;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

namespace {

LoadResult with_env(const std::string& yaml, const Environment& env) { return load_string(yaml, "t.yaml", env); }

Config env_ok(const std::string& yaml, const Environment& env) {
  auto result = with_env(yaml, env);
  INFO(Catch::Detail::stringify(messages(result.errors)));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  return *result.config;
}

Strings env_errors(const std::string& yaml, const Environment& env) { return messages(with_env(yaml, env).errors); }

// Sets a process variable for one scope and restores what was there before.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The key paths of describe()'s YAML: "relay.host", "listen" (lists count as one key).
void leaves(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      auto key = it->first.Scalar();
      leaves(it->second, path.empty() ? key : path + "." + key, out);
    }
  } else {
    out.insert(path);
  }
}

}  // namespace

TEST_CASE("variable names: MAILHOP_ and the key path in upper case, joined by _") {
  CHECK(variable_name("relay.host") == "MAILHOP_RELAY_HOST");
  CHECK(variable_name("delivery.retry.initial") == "MAILHOP_DELIVERY_RETRY_INITIAL");
  CHECK(variable_name("relay.password_file") == "MAILHOP_RELAY_PASSWORD_FILE");
  CHECK(variable_name("allowed_networks") == "MAILHOP_ALLOWED_NETWORKS");
  std::set<std::string> names;
  for (const auto& key : environment_keys()) names.insert(variable_name(key));
  CHECK(names.size() == environment_keys().size());  // no two keys share a variable
}

TEST_CASE("environment keys: every key describe() writes can be set from the environment") {
  auto c = load_ok("relay:\n  auth: xoauth2\n  username: u\n  oauth2: {token_command: /bin/token}\n");
  c.relay.password = "p";  // written only when set
  std::set<std::string> written;
  leaves(YAML::Load(describe(c)), "", written);
  std::set<std::string> settable(environment_keys().begin(), environment_keys().end());
  for (const auto& key : written) {
    INFO(key);
    CHECK(settable.contains(key));
  }
  for (const auto& key : settable) {
    INFO(key);
    CHECK(written.contains(key));
  }
}

TEST_CASE("a variable overrides the file, or the default; values are checked as in the file") {
  auto c = env_ok("relay:\n  host: file.example.org\n  port: 25\n",
                  {{"MAILHOP_RELAY_HOST", "env.example.org"},
                   {"MAILHOP_DELIVERY_RETRY_INITIAL", "30s"},
                   {"MAILHOP_LIMITS_MAX_MESSAGE_SIZE", "10MiB"},
                   {"MAILHOP_RELAY_VERIFY", "false"},
                   {"MAILHOP_LOG_FORMAT", "json"},
                   {"MAILHOP_RELAY_OAUTH2_SCOPE", "https://outlook.office365.com/.default"},
                   {"MAILHOP_RELAY_AUTH", "xoauth2"},
                   {"MAILHOP_RELAY_USERNAME", "me@example.org"},
                   {"MAILHOP_RELAY_OAUTH2_TOKEN_COMMAND", "/usr/bin/get-token"}});
  CHECK(c.relay.host == "env.example.org");
  CHECK(c.relay.port == 25);  // from the file
  CHECK(c.delivery.retry.initial == std::chrono::seconds(30));
  CHECK(c.limits.max_message_size == 10u * 1024 * 1024);
  CHECK_FALSE(c.relay.verify);
  CHECK(c.log.format == mailhop::util::LogFormat::json);
  REQUIRE(c.relay.oauth2);  // a section the file did not have
  CHECK(c.relay.oauth2->scope == "https://outlook.office365.com/.default");
  CHECK(c.relay.oauth2->token_command == "/usr/bin/get-token");
}

TEST_CASE("an empty file, or an empty section, still takes variables") {
  CHECK(env_ok("", {{"MAILHOP_RELAY_HOST", "mx.example.org"}}).relay.host == "mx.example.org");
  CHECK(env_ok("relay:\n", {{"MAILHOP_RELAY_PORT", "2525"}}).relay.port == 2525);
}

TEST_CASE("lists are comma-separated; an empty variable is none, or the empty list") {
  auto c = env_ok("", {{"MAILHOP_ALLOWED_NETWORKS", "10.0.0.0/8, 192.168.0.0/16,::1/128,"},
                       {"MAILHOP_RELAY_FALLBACK", "backup.example.org:587, [2001:db8::1]:25"},
                       {"MAILHOP_TRUSTED_PROXIES", ""}});
  REQUIRE(c.allowed_networks.size() == 3);
  CHECK(c.allowed_networks[0].text == "10.0.0.0/8");
  CHECK(c.allowed_networks[1].text == "192.168.0.0/16");
  CHECK(c.allowed_networks[2].text == "::1/128");
  REQUIRE(c.relay.fallback.size() == 2);
  CHECK(to_string(c.relay.fallback[1]) == "[2001:db8::1]:25");
  CHECK(c.trusted_proxies.empty());
  auto d = env_ok("relay:\n  ca_file: /etc/ca.pem\n", {{"MAILHOP_RELAY_CA_FILE", ""}});
  CHECK_FALSE(d.relay.ca_file);
}

TEST_CASE("MAILHOP_LISTEN: ADDRESS[ tls=MODE][ auth=MODE][ proxy_protocol=true], comma-separated") {
  auto c = env_ok("",
                  {{"MAILHOP_LISTEN", "127.0.0.1:2525, [::1]:587 tls=starttls auth=optional,127.0.0.1:2526 "
                                      "proxy_protocol=true"},
                   {"MAILHOP_TLS_CERT_FILE", "/c.pem"},
                   {"MAILHOP_TLS_KEY_FILE", "/k.pem"},
                   {"MAILHOP_AUTH_USERS_FILE", "/users"},
                   {"MAILHOP_TRUSTED_PROXIES", "127.0.0.1"}});
  REQUIRE(c.listen.size() == 3);
  CHECK(c.listen[0] == Listener{"127.0.0.1:2525", "127.0.0.1", 2525, ListenerTls::none, ListenerAuth::none, false});
  CHECK(c.listen[1] == Listener{"[::1]:587", "::1", 587, ListenerTls::starttls, ListenerAuth::optional, false});
  CHECK(c.listen[2].proxy_protocol);
  CHECK(env_errors("", {{"MAILHOP_LISTEN", "127.0.0.1:2525 tsl=starttls"}}) ==
        Strings{"MAILHOP_LISTEN: listen[0] (\"127.0.0.1:2525 tsl=starttls\"): \"tsl=starttls\" is not an option; "
                "write ADDRESS[ tls=MODE][ auth=MODE][ proxy_protocol=true] (did you mean tls?)"});
  CHECK(env_errors("", {{"MAILHOP_LISTEN", "127.0.0.1:2525, 127.0.0.1:2526 tls=sometimes"}}) ==
        Strings{"MAILHOP_LISTEN: listen[1].tls: \"sometimes\" is not one of none, starttls, implicit"});
  CHECK(env_errors("", {{"MAILHOP_LISTEN", ""}}) == Strings{"MAILHOP_LISTEN: has no listener (add e.g. - address: "
                                                            "\"127.0.0.1:2525\")"});
}

TEST_CASE("errors in a variable's value name the variable, not the file") {
  CHECK(env_errors("limits:\n  max_message_size: 1MiB\n", {{"MAILHOP_LIMITS_MAX_MESSAGE_SIZE", "25XB"}}) ==
        Strings{"MAILHOP_LIMITS_MAX_MESSAGE_SIZE: \"25XB\" is not a size (use e.g. 25MiB)"});
  CHECK(env_errors("", {{"MAILHOP_RELAY_PORT", "0"}, {"MAILHOP_RELAY_TLS", "tsl"}}) ==
        Strings{"MAILHOP_RELAY_PORT: \"0\" is not a port (use a number from 1 to 65535)",
                "MAILHOP_RELAY_TLS: \"tsl\" is not one of starttls, implicit, opportunistic, none"});
  // A check across keys points at the variable that set the key it names.
  CHECK(env_errors("delivery:\n  retry:\n    max: 1m\n", {{"MAILHOP_DELIVERY_RETRY_INITIAL", "2h"}}) ==
        Strings{"MAILHOP_DELIVERY_RETRY_INITIAL: 2h is longer than delivery.retry.max (1m); the first wait must "
                "not exceed the longest"});
  // Errors of the file keep their place.
  CHECK(env_errors("relay:\n  port: x\n", {{"MAILHOP_RELAY_HOST", "mx.example.org"}}) ==
        Strings{"t.yaml:2: relay.port: \"x\" is not a port (use a number from 1 to 65535)"});
}

TEST_CASE("unknown MAILHOP_ variables that look like keys are errors; the program's own are not") {
  CHECK(env_errors("", {{"MAILHOP_RELAY_HOTS", "x"}}) ==
        Strings{"MAILHOP_RELAY_HOTS: is not a configuration key (did you mean MAILHOP_RELAY_HOST?); a variable "
                "MAILHOP_<KEY> sets the key of that path, e.g. MAILHOP_RELAY_HOST for relay.host"});
  CHECK(env_errors("", {{"MAILHOP_LIMIT_MAX_ERRORS", "3"}}).size() == 1);  // a near miss of a variable
  CHECK(env_errors("", {{"MAILHOP_SPOOL", "/x"}}).size() == 1);            // a section, not a key
  CHECK(env_errors("", {{"MAILHOP_CONFIG", "/etc/x.yaml"},                 // the program's own
                        {"MAILHOP_BIN", "/usr/sbin/mailhop"},               // not like any key
                        {"MAILHOP_E2E_KEEP", "1"},
                        {"OTHER_RELAY_HOST", "x"}})
            .empty());
  // The variable relay.password_env names is the program's too, even if it looks like a key.
  CHECK(env_errors("relay:\n  username: u\n  password_env: MAILHOP_RELAY_SECRET\n",
                   {{"MAILHOP_RELAY_SECRET", "pw"}})
            .empty());
  CHECK(env_errors("relay:\n  username: u\n", {{"MAILHOP_RELAY_PASSWORD_ENV", "MAILHOP_RELAY_SECRET"},
                                               {"MAILHOP_RELAY_SECRET", "pw"}})
            .empty());
  CHECK(std::find(program_variables().begin(), program_variables().end(), "MAILHOP_CONFIG") !=
        program_variables().end());
}

TEST_CASE("the password: only from MAILHOP_RELAY_PASSWORD, never from the file, never shown") {
  auto c = env_ok("relay:\n  username: u\n", {{"MAILHOP_RELAY_PASSWORD", "hunter2-s3cret"}});
  CHECK(c.relay.password == "hunter2-s3cret");
  auto text = describe(c, with_env("relay:\n  username: u\n", {{"MAILHOP_RELAY_PASSWORD", "hunter2-s3cret"}}).sources);
  CHECK_THAT(text, !Contains("hunter2"));
  CHECK_THAT(text, Contains("password: <redacted>  # MAILHOP_RELAY_PASSWORD"));

  auto in_file = errors("relay:\n  username: u\n  password_file: /p\n  password: hunter2-s3cret\n");
  REQUIRE(in_file.size() == 1);
  CHECK_THAT(in_file[0], Contains("t.yaml:4: relay.password: a password is never written in the configuration file"));
  CHECK_THAT(in_file[0], Contains("MAILHOP_RELAY_PASSWORD"));
  CHECK_THAT(in_file[0], Contains("password_file"));
  CHECK_THAT(in_file[0], !Contains("hunter2"));

  // One source of the password at a time.
  CHECK(env_errors("relay:\n  username: u\n  password_file: /p\n", {{"MAILHOP_RELAY_PASSWORD", "x"}}) ==
        Strings{"MAILHOP_RELAY_PASSWORD: set together with relay.password_file; use one of them"});
  CHECK(env_errors("", {{"MAILHOP_RELAY_PASSWORD", "x"}}) ==
        Strings{"MAILHOP_RELAY_PASSWORD: set, but relay.username is not; add the user name to log in as"});
  // _FILE is just the key password_file.
  CHECK(env_ok("relay:\n  username: u\n", {{"MAILHOP_RELAY_PASSWORD_FILE", "/run/secrets/relay"}})
            .relay.password_file == "/run/secrets/relay");
}

TEST_CASE("sources: FILE:LINE for the file, the variable's name for the environment, none for defaults") {
  auto r = with_env("hostname: relay.example.org\nrelay:\n  host: file.example.org\n  port: 25\n",
                    {{"MAILHOP_RELAY_HOST", "env.example.org"}, {"MAILHOP_LISTEN", "127.0.0.1:2600 auth=none"}});
  REQUIRE(r.config);
  CHECK(r.sources.at("hostname") == "t.yaml:1");
  CHECK(r.sources.at("relay.port") == "t.yaml:4");
  CHECK(r.sources.at("relay.host") == "MAILHOP_RELAY_HOST");
  CHECK(r.sources.at("listen[0].auth") == "MAILHOP_LISTEN");
  CHECK_FALSE(r.sources.contains("relay.tls"));
  auto text = describe(*r.config, r.sources);
  CHECK_THAT(text, Contains("host: env.example.org  # MAILHOP_RELAY_HOST"));
  CHECK_THAT(text, Contains("port: 25  # t.yaml:4"));
  CHECK_THAT(text, Contains("address: 127.0.0.1:2600  # MAILHOP_LISTEN"));
  CHECK_THAT(text, Contains("tls: starttls\n"));  // relay.tls: a default, no note
  // The annotated text still loads into the same configuration.
  auto again = load_string(text, "t.yaml");
  INFO(text);
  REQUIRE(again.config);
  CHECK(again.config->relay == r.config->relay);
  CHECK(again.config->listen == r.config->listen);
}

TEST_CASE("load_file takes the process environment; resolve_path without a file needs MAILHOP_RELAY_HOST") {
  ScopedEnv config("MAILHOP_CONFIG", nullptr);
  ScopedEnv host("MAILHOP_RELAY_HOST", nullptr);
  ScopedEnv port("MAILHOP_RELAY_PORT", "2526");
  bool standard_exists = std::filesystem::exists("/etc/mailhop/mailhop.yaml");
  if (!standard_exists) CHECK(resolve_path(std::nullopt) == "/etc/mailhop/mailhop.yaml");

  ScopedEnv host2("MAILHOP_RELAY_HOST", "mx.example.org");
  CHECK(resolve_path(std::string("/x.yaml")) == "/x.yaml");
  if (!standard_exists) {
    CHECK(resolve_path(std::nullopt) == "");
    auto r = load_file(resolve_path(std::nullopt));
    INFO(Catch::Detail::stringify(messages(r.errors)));
    REQUIRE(r.config);
    CHECK(r.config->source == "");
    CHECK(r.config->relay.host == "mx.example.org");
    CHECK(r.config->relay.port == 2526);
    CHECK(r.config->listen == default_config().listen);
    CHECK_THAT(describe(*r.config, r.sources), Contains("No configuration file"));
  }
  // A file given explicitly is read, and the variables still win.
  auto r = load_file(default_file());
  INFO(Catch::Detail::stringify(messages(r.errors)));
  REQUIRE(r.config);
  CHECK(r.config->relay.host == "mx.example.org");
  CHECK(r.config->relay.port == 2526);
  // load_string without an environment ignores the process's.
  CHECK(load_ok("").relay.host == Relay{}.host);
}

TEST_CASE("no file: errors that belong to no variable are reported as (environment)") {
  auto r = load_file("", {{"MAILHOP_RELAY_HOST", "mx.example.org"}, {"MAILHOP_ADMIN_LISTEN", "127.0.0.1:2525"}});
  CHECK(messages(r.errors) ==
        Strings{"MAILHOP_ADMIN_LISTEN: \"127.0.0.1:2525\" is already used by listen[0] (\"127.0.0.1:2525\")"});
}
