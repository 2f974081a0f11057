// Client AUTH helpers: mechanism choice, the PLAIN initial response, reading the password.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "mailhop/delivery/auth.hpp"

using namespace mailhop;
using namespace mailhop::delivery;

TEST_CASE("auth: PLAIN preferred, LOGIN otherwise, a forced mechanism must be offered", "[auth]") {
  smtp::Capabilities both;
  both.auth = {"LOGIN", "PLAIN", "CRAM-MD5"};
  smtp::Capabilities login;
  login.auth = {"LOGIN"};
  smtp::Capabilities cram;
  cram.auth = {"CRAM-MD5"};
  smtp::Capabilities none;
  CHECK(choose_mechanism(config::RelayAuth::automatic, both).mechanism == AuthMechanism::plain);
  CHECK(choose_mechanism(config::RelayAuth::automatic, login).mechanism == AuthMechanism::login);
  CHECK(choose_mechanism(config::RelayAuth::login, both).mechanism == AuthMechanism::login);
  CHECK(!choose_mechanism(config::RelayAuth::plain, login).mechanism);
  auto c = choose_mechanism(config::RelayAuth::automatic, cram);
  CHECK(!c.mechanism);
  CHECK(c.error.find("CRAM-MD5") != std::string::npos);
  CHECK(choose_mechanism(config::RelayAuth::automatic, none).error == "the next hop does not offer AUTH");
}

TEST_CASE("auth: PLAIN initial response (RFC 4616)", "[auth]") {
  CHECK(plain_command("user", "secret") == "AUTH PLAIN AHVzZXIAc2VjcmV0");
}

TEST_CASE("auth: password file with one trailing newline stripped, or the environment", "[auth]") {
  auto path = std::filesystem::temp_directory_path() / ("mailhop-auth-test-" + std::to_string(::getpid()));
  config::Relay relay;
  std::string error;
  relay.password_file = path.string();
  std::ofstream(path, std::ios::binary) << "pa ss\n\n";
  CHECK(read_password(relay, error) == std::optional<std::string>("pa ss\n"));
  std::ofstream(path, std::ios::binary) << "pass\r\n";
  CHECK(read_password(relay, error) == std::optional<std::string>("pass"));
  std::ofstream(path, std::ios::binary) << "pass";
  CHECK(read_password(relay, error) == std::optional<std::string>("pass"));
  std::filesystem::remove(path);
  CHECK(!read_password(relay, error));
  CHECK(error.find(path.string()) != std::string::npos);

  config::Relay env;
  env.password_env = "MAILHOP_AUTH_TEST_PW";
  ::unsetenv("MAILHOP_AUTH_TEST_PW");
  CHECK(!read_password(env, error));
  CHECK(error.find("MAILHOP_AUTH_TEST_PW") != std::string::npos);
  ::setenv("MAILHOP_AUTH_TEST_PW", "from env", 1);
  CHECK(read_password(env, error) == std::optional<std::string>("from env"));
}
