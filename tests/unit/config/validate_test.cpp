// Checks across keys: the open-relay refusal, listeners that need certificates or users, the
// relay's credentials, retry ranges, and the warnings that do not stop a start.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "helpers.hpp"

using namespace mailhop::config;
using namespace mailhop::config::test;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

TEST_CASE("no open relay: a public listener without auth: required and allowed_networks 0.0.0.0/0 is refused") {
  auto list = errors(R"(listen:
  - address: "0.0.0.0:25"
allowed_networks:
  - 127.0.0.0/8
  - 0.0.0.0/0
)");
  REQUIRE(list.size() == 1);
  CHECK(list[0] ==
        "t.yaml:5: allowed_networks[1]: \"0.0.0.0/0\" would make listen[0] (\"0.0.0.0:25\", auth: none) an open "
        "relay for anyone who can reach it; list only your own networks (e.g. 10.0.0.0/8), or set auth: required "
        "on that listener");

  SECTION("::/0, and auth: optional, are refused too") {
    auto v6 = errors("listen:\n  - address: \"[::]:25\"\n    auth: optional\nauth: {users_file: /u}\n"
                     "allowed_networks: [\"::/0\"]\n");
    REQUIRE(v6.size() == 1);
    CHECK_THAT(v6[0], Contains("t.yaml:5: allowed_networks[0]: \"::/0\" would make listen[0]"));
    CHECK_THAT(v6[0], Contains("auth: optional"));
  }
  SECTION("::ffff:0:0/96 lets every IPv4 client of a dual-stack socket in") {
    CHECK(errors("listen:\n  - address: \"[::]:25\"\nallowed_networks: [\"::ffff:0.0.0.0/96\"]\n").size() == 1);
  }
  SECTION("a loopback listener behind the PROXY protocol sees remote clients") {
    CHECK(errors("listen:\n  - address: \"127.0.0.1:25\"\n    proxy_protocol: true\ntrusted_proxies: [127.0.0.1]\n"
                 "allowed_networks: [0.0.0.0/0]\n")
              .size() == 1);
  }
  SECTION("allowed: loopback listeners, auth: required, or a bounded network") {
    CHECK(errors("listen:\n  - address: \"127.0.0.1:25\"\nallowed_networks: [0.0.0.0/0]\n").empty());
    CHECK(errors("listen:\n  - address: \"[::1]:25\"\nallowed_networks: [\"::/0\"]\n").empty());
    CHECK(errors("listen:\n  - address: \"0.0.0.0:587\"\n    tls: starttls\n    auth: required\n"
                 "tls: {cert_file: /c, key_file: /k}\nauth: {users_file: /u}\nallowed_networks: [0.0.0.0/0]\n")
              .empty());
    CHECK(errors("listen:\n  - address: \"0.0.0.0:25\"\nallowed_networks: [10.0.0.0/8, \"::1/128\"]\n").empty());
  }
}

TEST_CASE("listeners with TLS need a certificate, with AUTH a users file") {
  CHECK(errors("listen:\n  - address: \"127.0.0.1:465\"\n    tls: implicit\n") ==
        Strings{"t.yaml:3: listen[0].tls: implicit needs a server certificate: set tls.cert_file and tls.key_file"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:587\"\n    tls: starttls\ntls:\n  cert_file: /c\n") ==
        Strings{"t.yaml:3: listen[0].tls: starttls needs a server certificate: set tls.cert_file and tls.key_file",
                "t.yaml:5: tls.cert_file: set without tls.key_file; set both"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:587\"\n    auth: required\n") ==
        Strings{"t.yaml:3: listen[0].auth: required needs auth.users_file (the users who may log in)"});
  CHECK(errors("listen:\n  - address: \"127.0.0.1:587\"\n    auth: optional\nauth:\n  users_file: /u\n").empty());

  SECTION("AUTH needs TLS on a non-loopback listener") {
    CHECK(errors("listen:\n  - address: \"0.0.0.0:587\"\n    auth: required\nauth: {users_file: /u}\n") ==
          Strings{"t.yaml:3: listen[0].auth: required, but AUTH is offered only over TLS on a non-loopback address, "
                  "and this listener has tls: none, so no client could send mail; set tls: starttls or implicit"});
    CHECK(warnings("listen:\n  - address: \"0.0.0.0:587\"\n    auth: optional\nauth: {users_file: /u}\n"
                   "relay: {host: mx.example.org}\n")
              .size() == 1);
  }
  SECTION("proxy_protocol needs trusted_proxies") {
    CHECK(errors("listen:\n  - address: \"127.0.0.1:2525\"\n    proxy_protocol: true\n") ==
          Strings{"t.yaml:3: listen[0].proxy_protocol: true, but trusted_proxies is empty, so every connection would "
                  "be refused; list the load balancer's addresses in trusted_proxies"});
  }
}

TEST_CASE("the relay's credentials") {
  CHECK(errors("relay:\n  username: u\n  password_file: /p\n  password_env: P\n") ==
        Strings{"t.yaml:4: relay.password_env: set together with relay.password_file; use one of them"});
  CHECK(errors("relay:\n  username: u\n") ==
        Strings{"t.yaml:2: relay.username: set, but no password: set relay.password_file (or relay.password_env, or the variable "
            "MAILHOP_RELAY_PASSWORD)"});
  CHECK(errors("relay:\n  password_file: /p\n") ==
        Strings{"t.yaml:2: relay.password_file: set, but relay.username is not; add the user name to log in as"});
  CHECK(errors("relay:\n  auth: login\n") ==
        Strings{"t.yaml:2: relay.auth: login needs relay.username and relay.password_file (or password_env)"});
  CHECK(errors("relay:\n  username: u\n  password_file: /p\n  auth: plain\n").empty());

  SECTION("OAuth2") {
    CHECK(errors("relay:\n  auth: xoauth2\n") ==
          Strings{"t.yaml:2: relay.username: is required with relay.auth: xoauth2 (the mailbox to send as)",
                  "t.yaml:2: relay.oauth2: is required with relay.auth: xoauth2 (token_url, client_id, … or "
                  "token_command)"});
    CHECK(errors("relay:\n  auth: oauthbearer\n  username: u\n  oauth2:\n    token_url: https://idp/token\n") ==
          Strings{"t.yaml:4: relay.oauth2.client_id: is required with token_url",
                  "t.yaml:4: relay.oauth2.refresh_token_file: is required with grant: refresh_token"});
    CHECK(errors("relay:\n  auth: xoauth2\n  username: u\n  oauth2:\n    token_url: https://idp/token\n"
                 "    client_id: c\n    grant: client_credentials\n") ==
          Strings{"t.yaml:7: relay.oauth2.client_secret_file: is required with grant: client_credentials"});
    CHECK(errors("relay:\n  auth: xoauth2\n  username: u\n  oauth2:\n    token_command: get-token\n"
                 "    token_url: https://idp/token\n") ==
          Strings{"t.yaml:5: relay.oauth2.token_command: set together with relay.oauth2.token_url; use one way to get "
                  "tokens"});
    CHECK(errors("relay:\n  auth: xoauth2\n  username: u\n  oauth2:\n    token_command: get-token\n").empty());
    CHECK(errors("relay:\n  oauth2:\n    token_command: get-token\n") ==
          Strings{"t.yaml:2: relay.oauth2: is only used with relay.auth: xoauth2 or oauthbearer (relay.auth is auto)"});
  }
}

TEST_CASE("warnings: allowed, but worth a look") {
  auto result = load_string("relay:\n  tls: none\n  username: u\n  password_file: /p\n  host: mx.example.org\n", "t.yaml");
  CHECK(result.errors.empty());
  CHECK(result.config);
  CHECK(messages(result.warnings) ==
        Strings{"t.yaml:2: relay.tls: none: the password is sent without encryption; use this only for a next hop on "
                "this machine or a trusted network"});

  CHECK(warnings("relay:\n  verify: false\n  host: mx.example.org\n") ==
        Strings{"t.yaml:2: relay.verify: false: the next hop's certificate is not checked, so anyone on the path can "
                "read the mail and the password"});
  CHECK(warnings("relay:\n  tls: implicit\n  host: mx.example.org\n").size() == 1);  // on the STARTTLS port 587

  ::unsetenv("MAILHOP_TEST_UNSET_VARIABLE");
  CHECK(warnings("relay:\n  username: u\n  password_env: MAILHOP_TEST_UNSET_VARIABLE\n  host: mx.example.org\n") ==
        Strings{"t.yaml:3: relay.password_env: the variable MAILHOP_TEST_UNSET_VARIABLE is not set here; it must be "
                "set where mailhop runs"});
  ::setenv("MAILHOP_TEST_SET_VARIABLE", "x", 1);
  CHECK(warnings("relay:\n  username: u\n  password_env: MAILHOP_TEST_SET_VARIABLE\n  host: mx.example.org\n").empty());
}

TEST_CASE("retry: initial must not exceed max") {
  CHECK(errors("delivery:\n  retry:\n    initial: 2h\n    max: 1h\n") ==
        Strings{"t.yaml:3: delivery.retry.initial: 2h is longer than delivery.retry.max (1h); the first wait must not "
                "exceed the longest"});
  CHECK(errors("delivery:\n  retry:\n    initial: 1h\n    max: 1h\n").empty());
  CHECK(errors("delivery:\n  retry:\n    initial: 30m\n    give_up_after: 10m\n").size() == 1);
}

TEST_CASE("the placeholder next hop is worth a warning") {
  CHECK(warnings("") == Strings{"t.yaml: relay.host: smtp.example.com is the placeholder of the example "
                                "configuration; set the next hop that mail goes to"});
  CHECK(warnings("relay:\n  host: smtp.example.com\n") ==
        Strings{"t.yaml:2: relay.host: smtp.example.com is the placeholder of the example configuration; set the next "
                "hop that mail goes to"});
  CHECK(warnings("relay:\n  host: mx.example.org\n").empty());
}

TEST_CASE("listeners that cannot be bound side by side") {
  CHECK(errors("listen:\n  - address: \"0.0.0.0:25\"\n  - address: \"127.0.0.1:25\"\n") ==
        Strings{"t.yaml:3: listen[1].address: \"127.0.0.1:25\" overlaps (a wildcard address listens on every address "
                "of its family) listen[0] (\"0.0.0.0:25\")"});
  CHECK(errors("listen:\n  - address: \"[::]:25\"\n  - address: \"[::1]:25\"\n").size() == 1);
  CHECK(errors("listen:\n  - address: \"0.0.0.0:25\"\n  - address: \"127.0.0.1:26\"\n  - address: \"[::1]:25\"\n")
            .empty());
  CHECK(errors("listen:\n  - address: \"0.0.0.0:8025\"\n").size() == 1);  // the admin port
  CHECK(errors("listen:\n  -\n") ==
        Strings{"t.yaml:1: listen[0]: has no address (add e.g. address: \"127.0.0.1:2525\")"});
  CHECK(errors("listen:\n  - \"127.0.0.1:2525\"\n") ==
        Strings{"t.yaml:2: listen[0]: must be a mapping of keys (key: value), not the value \"127.0.0.1:2525\""});
}
