// Loading: the documented default file, every kind of error with its line and key, unknown
// keys, sizes and durations, the search order of the configuration file.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"

using namespace mailhop::config;
using namespace mailhop::config::test;
using Catch::Matchers::Contains;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST_CASE("the documented default configuration loads as the README's run command needs it") {
  auto result = load_file(default_file());
  INFO(Catch::Detail::stringify(messages(result.errors)));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config);
  const auto& c = *result.config;
  CHECK(c.source == default_file());
  CHECK(c.hostname == "localhost");
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].host == "127.0.0.1");
  CHECK(c.listen[0].port == 2525);
  CHECK(c.listen[0].tls == ListenerTls::none);
  CHECK(c.listen[0].auth == ListenerAuth::none);
  CHECK(c.spool_path == "var/spool");
  CHECK(c.relay.host == "127.0.0.1");
  CHECK(c.relay.port == 2526);
  CHECK(c.relay.tls == RelayTls::none);
  CHECK_FALSE(c.relay.username);
  CHECK(c.admin.listen == "127.0.0.1:8025");
  // Everything else is at the defaults of issue 2.
  CHECK(c.limits == Limits{});
  CHECK(c.delivery == Delivery{});
  CHECK(c.relay.timeouts == RelayTimeouts{});
  CHECK(c.log == Log{});
  CHECK(c.allowed_networks == default_config().allowed_networks);
  CHECK(result.warnings.empty());
}

TEST_CASE("every key of the default file has a comment") {
  std::ifstream in(default_file());
  REQUIRE(in);
  std::string line, previous;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto text = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    bool is_key = !text.empty() && text[0] != '#' && text.find(':') != std::string::npos;
    auto previous_text = previous.substr(std::min(previous.find_first_not_of(' '), previous.size()));
    bool commented = previous_text.starts_with("#") || text.find('#') != std::string::npos ||
                     previous_text.starts_with("- ");  // the keys of one list item share its comment block
    INFO("line " << number << ": " << line);
    if (is_key && !text.starts_with("- ")) CHECK(commented);
    previous = line;
  }
}

TEST_CASE("an empty file gives the defaults") {
  auto c = load_ok("");
  auto d = default_config();
  d.source = "t.yaml";
  CHECK(c == d);
  REQUIRE(c.listen.size() == 1);
  CHECK(c.listen[0].address == "127.0.0.1:2525");
  CHECK(c.spool_path == "/var/spool/mailhop");
  CHECK_FALSE(c.hostname.empty());
}

TEST_CASE("the schema of issue 2 and the keys of later issues are accepted") {
  auto c = load_ok(R"(hostname: relay.example.org
threads: 4
listen:
  - address: "127.0.0.1:2525"
    tls: none
    auth: none
  - address: "[::1]:465"
    tls: implicit
    auth: required
    proxy_protocol: true
allowed_networks: ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]
trusted_proxies: ["10.0.0.5"]
limits:
  max_message_size: 10MiB
  max_recipients: 50
  max_connections: 200
  max_connections_per_ip: 20
  max_errors: 5
  command_timeout: 2m
  data_timeout: 3m
  session_timeout: 1h
spool:
  path: /srv/spool
tls:
  cert_file: /etc/mailhop/cert.pem
  key_file: /etc/mailhop/key.pem
auth:
  users_file: /etc/mailhop/users
relay:
  host: smtp.office365.com
  port: 587
  tls: starttls
  verify: true
  ca_file: /etc/ssl/ca.pem
  username: relay@example.org
  auth: xoauth2
  oauth2:
    token_url: https://login.microsoftonline.com/t/oauth2/v2.0/token
    client_id: abc
    client_secret_file: /etc/mailhop/secret
    scope: https://outlook.office365.com/.default
    grant: client_credentials
    refresh_token_file: null
    ca_file: null
  fallback: ["backup.example.org:25", "[2001:db8::1]:587", "192.0.2.7:465"]
  timeouts: { connect: 10s, greeting: 1m, command: 2m, data_init: 1m, data_block: 2m, data_end: 5m, idle: 30s }
delivery:
  workers: 8
  max_connections: 2
  retry: { initial: 30s, max: 2h, give_up_after: 3d }
admin:
  listen: "127.0.0.1:9025"
  token_file: /etc/mailhop/admin-token
  readiness_window: 10m
log:
  level: debug
  format: json
)");
  CHECK(c.hostname == "relay.example.org");
  CHECK(c.threads == 4);
  REQUIRE(c.listen.size() == 2);
  CHECK(c.listen[1].host == "::1");
  CHECK(c.listen[1].port == 465);
  CHECK(c.listen[1].tls == ListenerTls::implicit);
  CHECK(c.listen[1].auth == ListenerAuth::required);
  CHECK(c.listen[1].proxy_protocol);
  CHECK(c.allowed_networks.size() == 3);
  REQUIRE(c.trusted_proxies.size() == 1);
  CHECK(c.trusted_proxies[0].prefix_length == 32);
  CHECK(c.limits.max_message_size == 10u * 1024 * 1024);
  CHECK(c.limits.max_recipients == 50);
  CHECK(c.limits.max_connections == 200);
  CHECK(c.limits.max_connections_per_ip == 20);
  CHECK(c.limits.max_errors == 5);
  CHECK(c.limits.command_timeout == minutes(2));
  CHECK(c.limits.data_timeout == minutes(3));
  CHECK(c.limits.session_timeout == hours(1));
  CHECK(c.spool_path == "/srv/spool");
  CHECK(c.tls.cert_file == "/etc/mailhop/cert.pem");
  CHECK(c.auth.users_file == "/etc/mailhop/users");
  CHECK(c.relay.host == "smtp.office365.com");
  CHECK(c.relay.ca_file == "/etc/ssl/ca.pem");
  CHECK(c.relay.auth == RelayAuth::xoauth2);
  REQUIRE(c.relay.oauth2);
  CHECK(c.relay.oauth2->grant == OAuth2Grant::client_credentials);
  CHECK(c.relay.oauth2->client_id == "abc");
  CHECK_FALSE(c.relay.oauth2->refresh_token_file);
  REQUIRE(c.relay.fallback.size() == 3);
  CHECK(c.relay.fallback[0].host == "backup.example.org");
  CHECK(c.relay.fallback[0].port == 25);
  CHECK(c.relay.fallback[1].host == "2001:db8::1");
  CHECK(c.relay.fallback[2].port == 465);
  CHECK(c.relay.timeouts.connect == seconds(10));
  CHECK(c.relay.timeouts.idle == seconds(30));
  CHECK(c.relay.timeouts.data_end == minutes(5));
  CHECK(c.delivery.workers == 8);
  CHECK(c.delivery.retry.initial == seconds(30));
  CHECK(c.delivery.retry.give_up_after == hours(72));
  CHECK(c.admin.token_file == "/etc/mailhop/admin-token");
  CHECK(c.admin.readiness_window == minutes(10));
  CHECK(c.log.level == "debug");
  CHECK(c.log.format == mailhop::util::LogFormat::json);
}

TEST_CASE("sizes and durations take their units") {
  auto c = load_ok("limits:\n  max_message_size: 512KiB\n  command_timeout: 1500ms\n  data_timeout: 90\n");
  CHECK(c.limits.max_message_size == 512 * 1024);
  CHECK(c.limits.command_timeout == milliseconds(1500));
  CHECK(c.limits.data_timeout == seconds(90));  // a bare number is seconds
  CHECK(load_ok("limits: {max_message_size: 1GiB}").limits.max_message_size == 1024ull * 1024 * 1024);
  CHECK(load_ok("limits: {max_message_size: 1000}").limits.max_message_size == 1000);
  CHECK(load_ok("limits: {max_message_size: 100B}").limits.max_message_size == 100);
  CHECK(load_ok("delivery: {retry: {give_up_after: 2d}}").delivery.retry.give_up_after == hours(48));

  CHECK(errors("limits:\n  max_message_size: 25XB\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_message_size: \"25XB\" is not a size (use e.g. 25MiB)"});
  CHECK(errors("limits:\n  max_message_size: 0\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_message_size: must be larger than 0"});
  CHECK(errors("limits:\n  command_timeout: 5 minutes\n") ==
        std::vector<std::string>{
            "t.yaml:2: limits.command_timeout: \"5 minutes\" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 5d)"});
  CHECK(errors("relay:\n  timeouts:\n    idle: 0s\n") ==
        std::vector<std::string>{"t.yaml:3: relay.timeouts.idle: must be longer than 0"});
  CHECK(errors("limits:\n  max_message_size: 99999999999999999999GiB\n").size() == 1);
}

TEST_CASE("each kind of value error names its line and key") {
  CHECK(errors("listen:\n  - address: \"127.0.0.1:2525\"\n    tls: tsl\n") ==
        std::vector<std::string>{"t.yaml:3: listen[0].tls: \"tsl\" is not one of none, starttls, implicit"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:2525\"\n    auth: requierd\n") ==
        std::vector<std::string>{
            "t.yaml:3: listen[0].auth: \"requierd\" is not one of none, optional, required (did you mean required?)"});
  CHECK(errors("limits:\n  max_recipients: many\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_recipients: \"many\" is not a whole number"});
  CHECK(errors("limits:\n  max_recipients: -1\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_recipients: \"-1\" is not a whole number"});
  CHECK(errors("limits:\n  max_connections: 0\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_connections: \"0\" is too small (at least 1)"});
  CHECK(errors("delivery:\n  workers: 0\n") ==
        std::vector<std::string>{"t.yaml:2: delivery.workers: \"0\" is too small (at least 1)"});
  CHECK(errors("delivery:\n  max_connections: 0\n") ==
        std::vector<std::string>{"t.yaml:2: delivery.max_connections: \"0\" is too small (at least 1)"});
  CHECK(errors("threads: 99999999999\n") ==
        std::vector<std::string>{"t.yaml:1: threads: \"99999999999\" is too large (at most 1024)"});
  CHECK(errors("relay:\n  port: 0\n") ==
        std::vector<std::string>{"t.yaml:2: relay.port: \"0\" is not a port (use a number from 1 to 65535)"});
  CHECK(errors("relay:\n  port: 65536\n") ==
        std::vector<std::string>{"t.yaml:2: relay.port: \"65536\" is not a port (use a number from 1 to 65535)"});
  CHECK(errors("relay:\n  verify: maybe\n") ==
        std::vector<std::string>{"t.yaml:2: relay.verify: \"maybe\" is not true or false"});
  CHECK(errors("log:\n  level: verbose\n") ==
        std::vector<std::string>{"t.yaml:2: log.level: \"verbose\" is not one of trace, debug, info, warn, error"});
  CHECK(errors("log:\n  format: jsno\n") ==
        std::vector<std::string>{"t.yaml:2: log.format: \"jsno\" is not one of text, json (did you mean json?)"});
  CHECK(errors("relay:\n  auth: cram-md5\n") ==
        std::vector<std::string>{
            "t.yaml:2: relay.auth: \"cram-md5\" is not one of auto, plain, login, xoauth2, oauthbearer"});
  CHECK(errors("relay:\n  tls: ssl\n") ==
        std::vector<std::string>{
            "t.yaml:2: relay.tls: \"ssl\" is not one of starttls, implicit, opportunistic, none"});
  CHECK(errors("hostname: relay_1.example.org\n") ==
        std::vector<std::string>{
            "t.yaml:1: hostname: \"relay_1.example.org\" is not a domain name (letters, digits, hyphens and dots, "
            "e.g. relay.example.org)"});
  CHECK(errors("hostname: -bad.example\n").size() == 1);
  CHECK(errors("relay:\n  host: \"smtp.example.com:587\"\n") ==
        std::vector<std::string>{
            "t.yaml:2: relay.host: \"smtp.example.com:587\" is not a host name or IP address (write the port in "
            "relay.port)"});
  CHECK(errors("spool:\n  path: \"\"\n") ==
        std::vector<std::string>{"t.yaml:2: spool.path: is empty (use e.g. /var/spool/mailhop)"});
  CHECK(errors("hostname:\n") == std::vector<std::string>{"t.yaml:1: hostname: needs a value"});
  CHECK(errors("hostname: [a, b]\n") ==
        std::vector<std::string>{"t.yaml:1: hostname: must be a single value, not a list"});
  CHECK(errors("limits: 5\n") ==
        std::vector<std::string>{"t.yaml:1: limits: must be a mapping of keys (key: value), not the value \"5\""});
  CHECK(errors("allowed_networks: 127.0.0.0/8\n") ==
        std::vector<std::string>{
            "t.yaml:1: allowed_networks: must be a list, e.g. [\"127.0.0.0/8\", \"::1/128\"]"});
  CHECK(errors("relay:\n  fallback: [\"backup.example.org\"]\n") ==
        std::vector<std::string>{
            "t.yaml:2: relay.fallback[0]: \"backup.example.org\" is not host:port (use e.g. "
            "\"backup.example.com:587\" or \"[2001:db8::1]:25\")"});
  CHECK(errors("relay:\n  password_env: 1PASS\n  username: u\n") ==
        std::vector<std::string>{
            "t.yaml:2: relay.password_env: \"1PASS\" is not the name of an environment variable (letters, digits "
            "and _, e.g. SMTP_PASSWORD)",
            "t.yaml:3: relay.username: set, but no password: set relay.password_file (or relay.password_env, or the variable "
            "MAILHOP_RELAY_PASSWORD)"});
  CHECK(errors("relay:\n  auth: xoauth2\n  username: u\n  oauth2:\n    token_url: http://idp/token\n"
               "    client_id: c\n    refresh_token_file: /r\n") ==
        std::vector<std::string>{
            "t.yaml:5: relay.oauth2.token_url: \"http://idp/token\" is not an https:// URL (tokens are only "
            "fetched over TLS)"});
}

TEST_CASE("listen and network addresses are checked") {
  CHECK(errors("listen:\n  - address: \"localhost:2525\"\n") ==
        std::vector<std::string>{
            "t.yaml:2: listen[0].address: \"localhost:2525\" is not an address with a port (use IPv4 "
            "\"127.0.0.1:2525\" or IPv6 \"[::1]:2525\")"});
  CHECK(errors("listen:\n  - address: \"::1:2525\"\n") ==
        std::vector<std::string>{
            "t.yaml:2: listen[0].address: \"::1:2525\": an IPv6 address needs brackets, as in \"[::1]:2525\""});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:0\"\n") ==
        std::vector<std::string>{
            "t.yaml:2: listen[0].address: \"127.0.0.1:0\": the port must be a number from 1 to 65535"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1\"\n").size() == 1);
  CHECK(errors("listen:\n  - address: \"[127.0.0.1]:25\"\n").size() == 1);
  CHECK(errors("listen:\n  - tls: none\n") ==
        std::vector<std::string>{"t.yaml:2: listen[0]: has no address (add e.g. address: \"127.0.0.1:2525\")"});
  CHECK(errors("listen: []\n") ==
        std::vector<std::string>{"t.yaml:1: listen: has no listener (add e.g. - address: \"127.0.0.1:2525\")"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:2525\"\n  - address: \"[::1]:2525\"\n"
               "  - address: \"127.0.0.1:2525\"\n") ==
        std::vector<std::string>{"t.yaml:4: listen[2].address: \"127.0.0.1:2525\" is already used by listen[0] (\"127.0.0.1:2525\")"});
  CHECK(errors("admin:\n  listen: \"127.0.0.1:2525\"\n") ==
        std::vector<std::string>{"t.yaml:2: admin.listen: \"127.0.0.1:2525\" is already used by listen[0] (\"127.0.0.1:2525\")"});
  CHECK(errors("admin:\n  listen: \"0.0.0.0:8025\"\n") ==
        std::vector<std::string>{
            "t.yaml:2: admin.listen: \"0.0.0.0:8025\" is reachable from other machines; set admin.token_file "
            "(requests then need the token) or listen on 127.0.0.1"});
  CHECK(errors("admin:\n  listen: \"0.0.0.0:8025\"\n  token_file: /t\n").empty());
  CHECK(errors("allowed_networks:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n  - 10.0.0.0/33\n  - example.org/8\n") ==
        std::vector<std::string>{
            "t.yaml:3: allowed_networks[1]: \"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)",
            "t.yaml:4: allowed_networks[2]: \"10.0.0.0/33\": the prefix length must be a number from 0 to 32",
            "t.yaml:5: allowed_networks[3]: \"example.org/8\" is not a network (use e.g. 10.0.0.0/8 or "
            "2001:db8::/32)"});
  CHECK(errors("trusted_proxies: [\"2001:db8::/129\"]\n") ==
        std::vector<std::string>{
            "t.yaml:1: trusted_proxies[0]: \"2001:db8::/129\": the prefix length must be a number from 0 to 128"});
}

TEST_CASE("unknown keys are errors, with a suggestion for a close typo") {
  CHECK(errors("relay:\n  tlss: none\n") ==
        std::vector<std::string>{"t.yaml:2: relay.tlss: unknown key (did you mean tls?)"});
  CHECK(errors("hostnmae: a.example\n") ==
        std::vector<std::string>{"t.yaml:1: hostnmae: unknown key (did you mean hostname?)"});
  CHECK(errors("limits:\n  max_mesage_size: 1MiB\n") ==
        std::vector<std::string>{"t.yaml:2: limits.max_mesage_size: unknown key (did you mean max_message_size?)"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:2525\"\n    Auth: none\n") ==
        std::vector<std::string>{"t.yaml:3: listen[0].Auth: unknown key (did you mean auth?)"});
  CHECK(errors("delivery:\n  retry:\n    intial: 1m\n") ==
        std::vector<std::string>{"t.yaml:3: delivery.retry.intial: unknown key (did you mean initial?)"});
  CHECK(errors("colour: blue\n") == std::vector<std::string>{"t.yaml:1: colour: unknown key"});
  CHECK(errors("relay:\n  oauth2:\n    secret: x\n    token_command: get-token\n  auth: xoauth2\n  username: u\n") ==
        std::vector<std::string>{"t.yaml:3: relay.oauth2.secret: unknown key"});
}

TEST_CASE("a key written twice is an error") {
  CHECK(errors("log:\n  level: info\n  level: debug\n") ==
        std::vector<std::string>{"t.yaml:3: log.level: appears twice (first on line 2)"});
}

TEST_CASE("all errors are reported at once, in file order") {
  auto list = errors(R"(hostname: ok.example
relay:
  tlss: none
  port: 0
listen:
  - address: "localhost:25"
    tls: tsl
limits:
  max_message_size: 25XB
bogus: 1
)");
  CHECK(list == std::vector<std::string>{
                    "t.yaml:3: relay.tlss: unknown key (did you mean tls?)",
                    "t.yaml:4: relay.port: \"0\" is not a port (use a number from 1 to 65535)",
                    "t.yaml:6: listen[0].address: \"localhost:25\" is not an address with a port (use IPv4 "
                    "\"127.0.0.1:2525\" or IPv6 \"[::1]:2525\")",
                    "t.yaml:7: listen[0].tls: \"tsl\" is not one of none, starttls, implicit",
                    "t.yaml:9: limits.max_message_size: \"25XB\" is not a size (use e.g. 25MiB)",
                    "t.yaml:10: bogus: unknown key",
                });
  CHECK_FALSE(load_string("bogus: 1\n", "t.yaml").config);
}

TEST_CASE("YAML syntax errors and unreadable files name the file and line") {
  CHECK(errors("relay:\n  host: [a\n  port: 25\n") ==
        std::vector<std::string>{"t.yaml:3: YAML syntax error: end of sequence flow not found"});
  CHECK(errors("relay:\n  host: a\n    port: 25\n") ==
        std::vector<std::string>{"t.yaml:3: YAML syntax error: illegal map value"});
  CHECK(errors("- a\n- b\n") == std::vector<std::string>{
                                    "t.yaml:1: (top level): must be a mapping of keys (key: value), not a list"});

  auto missing = load_file("/nonexistent/mailhop.yaml");
  CHECK(messages(missing.errors) ==
        std::vector<std::string>{"/nonexistent/mailhop.yaml: cannot read the file: No such file or directory"});
  CHECK_FALSE(missing.config);
  auto directory = load_file(std::filesystem::path(default_file()).parent_path().string());
  REQUIRE(directory.errors.size() == 1);
  CHECK_THAT(directory.errors[0].message, Contains("directory"));
}

TEST_CASE("load_file reports errors with the file name as given") {
  auto path = std::filesystem::temp_directory_path() / ("mailhop-config-test-" + std::to_string(getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << "# a comment\n\nrelay:\n  port: 99999\n";
  }
  auto result = load_file(path.string());
  std::filesystem::remove(path);
  CHECK(messages(result.errors) ==
        std::vector<std::string>{path.string() + ":4: relay.port: \"99999\" is not a port (use a number from 1 to 65535)"});
}

TEST_CASE("resolve_path: -c, then $MAILHOP_CONFIG, then /etc/mailhop/mailhop.yaml") {
  ::unsetenv("MAILHOP_CONFIG");
  CHECK(resolve_path(std::nullopt) == "/etc/mailhop/mailhop.yaml");  // MAILHOP_RELAY_HOST unset
  CHECK(resolve_path(std::string("my.yaml")) == "my.yaml");
  ::setenv("MAILHOP_CONFIG", "/from/env.yaml", 1);
  CHECK(resolve_path(std::nullopt) == "/from/env.yaml");
  CHECK(resolve_path(std::string("my.yaml")) == "my.yaml");
  ::setenv("MAILHOP_CONFIG", "", 1);
  CHECK(resolve_path(std::nullopt) == "/etc/mailhop/mailhop.yaml");  // MAILHOP_RELAY_HOST unset
  ::unsetenv("MAILHOP_CONFIG");
}

TEST_CASE("ConfigError::to_string is FILE:LINE: key: message") {
  CHECK(ConfigError{"f.yaml", 3, "relay.port", "bad"}.to_string() == "f.yaml:3: relay.port: bad");
  CHECK(ConfigError{"f.yaml", 0, "hostname", "bad"}.to_string() == "f.yaml: hostname: bad");
  CHECK(ConfigError{"f.yaml", 0, "", "cannot read"}.to_string() == "f.yaml: cannot read");
}
