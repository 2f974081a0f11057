// The token request's pieces: the form body, the endpoint's answer, secret files and the atomic
// write-back of a rotated refresh token, token_command, and endpoint failures named in errors.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mailhop/delivery/token_provider.hpp"

using namespace mailhop;
using namespace mailhop::delivery;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "mailhop-oauth2-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& content) const {
    auto p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

FetchResult run(asio::awaitable<FetchResult> (*f)(asio::any_io_executor, config::Relay), config::Relay relay) {
  asio::io_context io;
  FetchResult out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await f(io.get_executor(), relay); }, asio::detached);
  io.run();
  return out;
}

FetchResult run_command(const std::string& command) {
  asio::io_context io;
  FetchResult out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await fetch_from_command(io.get_executor(), command); },
                 asio::detached);
  io.run();
  return out;
}

}  // namespace

TEST_CASE("oauth2 http: the refresh_token form body, every value percent-encoded", "[oauth2]") {
  TempDir dir;
  config::OAuth2 o;
  o.client_id = "9e5f94bc-e8a4-4e73-b8be-63364c29d753";
  o.client_secret_file = dir.file("secret", "a+b/c=d&e f~\n");
  o.refresh_token_file = dir.file("refresh", "1//0gRT-x_y.z\r\n");
  o.scope = "https://outlook.office.com/SMTP.Send offline_access";
  std::string error;
  auto body = token_request_body(o, error);
  REQUIRE(body);
  CHECK(*body ==
        "grant_type=refresh_token&client_id=9e5f94bc-e8a4-4e73-b8be-63364c29d753"
        "&client_secret=a%2Bb%2Fc%3Dd%26e%20f~&refresh_token=1%2F%2F0gRT-x_y.z"
        "&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20offline_access");
}

TEST_CASE("oauth2 http: the client_credentials body, and unreadable files named", "[oauth2]") {
  TempDir dir;
  config::OAuth2 o;
  o.grant = config::OAuth2Grant::client_credentials;
  o.client_id = "app";
  o.client_secret_file = dir.file("secret", "s3cret\n\n");
  o.scope = "https://outlook.office365.com/.default";
  std::string error;
  auto body = token_request_body(o, error);
  REQUIRE(body);
  // Only one trailing newline is stripped.
  CHECK(*body == "grant_type=client_credentials&client_id=app&client_secret=s3cret%0A"
                 "&scope=https%3A%2F%2Foutlook.office365.com%2F.default");
  o.client_secret_file = (dir.path / "missing").string();
  CHECK_FALSE(token_request_body(o, error));
  CHECK(error.find("relay.oauth2.client_secret_file: cannot read " + *o.client_secret_file) == 0);
}

TEST_CASE("oauth2 http: the endpoint's answers", "[oauth2]") {
  auto ok = parse_token_response(
      200, R"({"access_token":"at","token_type":"Bearer","expires_in":3599,"refresh_token":"rt2","scope":"x"})", "E");
  REQUIRE(ok.token);
  CHECK(ok.token->access_token == "at");
  CHECK(ok.token->expires_in == std::chrono::seconds(3599));
  CHECK(ok.token->refresh_token == "rt2");

  auto text_expiry = parse_token_response(200, R"({"access_token":"at","token_type":"bearer","expires_in":"3600"})", "E");
  REQUIRE(text_expiry.token);
  CHECK(text_expiry.token->expires_in == std::chrono::seconds(3600));
  CHECK_FALSE(text_expiry.token->refresh_token);

  auto denied = parse_token_response(
      400, R"({"error":"invalid_grant","error_description":"AADSTS70000: The grant is expired."})", "token endpoint U");
  CHECK_FALSE(denied.token);
  CHECK(denied.error == "token endpoint U answered HTTP 400: invalid_grant (AADSTS70000: The grant is expired.)");

  auto broken = parse_token_response(502, "<html>Bad gateway</html>", "token endpoint U");
  CHECK(broken.error == "token endpoint U answered HTTP 502");

  auto not_json = parse_token_response(200, "access_token=at", "token endpoint U");
  CHECK_FALSE(not_json.token);
  CHECK(not_json.error.find("token endpoint U answered HTTP 200 without a JSON object") == 0);

  auto no_token = parse_token_response(200, R"({"token_type":"Bearer"})", "E");
  CHECK(no_token.error == "E answered HTTP 200 without an access_token");

  auto mac = parse_token_response(200, R"({"access_token":"at","token_type":"mac"})", "E");
  CHECK_FALSE(mac.token);
  // The token itself is never part of an error.
  CHECK(mac.error.find("at,") == std::string::npos);
  CHECK(mac.error == "E returned a token of type mac, not Bearer");
}

TEST_CASE("oauth2 http: a rotated refresh token replaces the file atomically, mode kept", "[oauth2]") {
  TempDir dir;
  auto path = dir.file("refresh", "old-token\n");
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  auto inode_before = fs::status(path).permissions();
  CHECK(write_secret_file(path, "new-token").empty());
  CHECK(slurp(path) == "new-token\n");
  CHECK(fs::status(path).permissions() == inode_before);
  // No temporary file is left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
  std::string error;
  CHECK(read_secret_file(path, error) == "new-token");

  // A new file gets 0600.
  auto fresh = (dir.path / "new").string();
  CHECK(write_secret_file(fresh, "t").empty());
  CHECK((fs::status(fresh).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  // A directory that does not exist: named, nothing written.
  auto err = write_secret_file((dir.path / "no" / "file").string(), "t");
  CHECK(err.find("cannot create a temporary file next to") == 0);
}

TEST_CASE("oauth2 command: a plain token, a JSON answer, failures", "[oauth2]") {
  auto plain = run_command("printf 'tok-123\\n'");
  REQUIRE(plain.token);
  CHECK(plain.token->access_token == "tok-123");
  CHECK(plain.token->expires_in == TokenProvider::kCommandLifetime);

  auto json = run_command(R"(echo '{"access_token":"j","expires_in":120}')");
  REQUIRE(json.token);
  CHECK(json.token->access_token == "j");
  CHECK(json.token->expires_in == std::chrono::seconds(120));

  auto failed = run_command("echo secret-output; exit 3");
  CHECK_FALSE(failed.token);
  CHECK(failed.error == "token_command exited with status 3");

  auto empty = run_command("true");
  CHECK(empty.error == "token_command printed no token");
}

TEST_CASE("oauth2 http: an endpoint that cannot be reached or is not https is named", "[oauth2]") {
  TempDir dir;
  // A loopback port nobody listens on: bind one, note it, close it.
  unsigned short port;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  config::Relay relay;
  relay.oauth2 = config::OAuth2{};
  relay.oauth2->client_id = "id";
  relay.oauth2->refresh_token_file = dir.file("refresh", "rt\n");
  relay.oauth2->token_url = "https://127.0.0.1:" + std::to_string(port) + "/token";
  auto down = run(&fetch_from_endpoint, relay);
  CHECK_FALSE(down.token);
  CHECK(down.error.find("token endpoint https://127.0.0.1:" + std::to_string(port) + "/token: cannot connect: ") == 0);

  relay.oauth2->token_url = "http://127.0.0.1/token";
  CHECK(run(&fetch_from_endpoint, relay).error == "relay.oauth2.token_url http://127.0.0.1/token is not an https:// URL");

  relay.oauth2->token_url = "https://127.0.0.1:" + std::to_string(port) + "/token";
  relay.oauth2->refresh_token_file = (dir.path / "missing").string();
  CHECK(run(&fetch_from_endpoint, relay).error.find("relay.oauth2.refresh_token_file: cannot read") == 0);
}
