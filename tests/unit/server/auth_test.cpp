// AUTH (RFC 4954) in a real Session from 127.0.0.1 without TLS (allowed from loopback): PLAIN
// and LOGIN with and without initial responses, the exact classic replies, cancellation,
// malformed base64, sequencing (503), auth: none/required, the per-user sender restriction,
// relaying after AUTH, and what the envelope and Received: record.
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "harness.hpp"
#include "mailhop/server/credentials.hpp"
#include "mailhop/spool/queue_id.hpp"
#include "mailhop/util/base64.hpp"

using namespace mailhop;
using namespace mailhop::server::test;

namespace {

constexpr const char* kPassword = "correct horse";

// Cheap hashes: the tests check the protocol, not the KDF's cost.
std::shared_ptr<server::Authenticator> authenticator() {
  server::HashParams cheap;
  cheap.scrypt_ln = 10;
  std::string text = "alice:" + server::make_hash(kPassword, cheap) + ":alice@example.org,@corp.example\n" +
                     "bob:" + server::make_hash(kPassword, cheap) + "\n";
  auto loaded = server::UsersFile::parse(text, "users");
  REQUIRE(loaded.users);
  return std::make_shared<server::Authenticator>(std::move(*loaded.users));
}

struct AuthHarness : SessionHarness {
  explicit AuthHarness(config::ListenerAuth mode = config::ListenerAuth::optional, config::Config c = test_config())
      : SessionHarness(std::move(c)) {
    listener.auth = mode;
    auth = authenticator();
  }
};

std::string b64(std::string_view s) { return util::base64_encode(s); }
std::string plain(std::string_view user, std::string_view password) {
  return b64(std::string("\0", 1) + std::string(user) + std::string("\0", 1) + std::string(password));
}

}  // namespace

TEST_CASE("AUTH is advertised on an auth listener from loopback, not on auth: none", "[auth]") {
  AuthHarness h;
  auto c = h.connect();
  c.reply();
  c.send("EHLO client.test\r\n");
  CHECK(c.reply().find("250-AUTH PLAIN LOGIN") != std::string::npos);

  SessionHarness none;
  auto d = none.greeted();
  d.send("AUTH PLAIN " + plain("alice", kPassword) + "\r\n");
  CHECK(d.reply() == "502 5.5.1 AUTH not available on this port");
}

TEST_CASE("AUTH PLAIN with an initial response, then the transaction is recorded as alice's", "[auth]") {
  AuthHarness h;
  auto c = h.greeted();
  c.send("AUTH PLAIN " + plain("alice", kPassword) + "\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");
  c.send("AUTH PLAIN " + plain("alice", kPassword) + "\r\n");
  CHECK(c.reply() == "503 5.5.1 Bad sequence of commands: already authenticated");
  c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
  CHECK(c.reply().rfind("354", 0) == 0);
  c.send("Subject: hi\r\n\r\nbody\r\n.\r\n");
  auto queued = c.reply();
  REQUIRE(queued.rfind("250 2.0.0 Ok: queued as ", 0) == 0);
  auto envelopes = h.spool.list();
  REQUIRE(envelopes.size() == 1);
  CHECK(envelopes.front().auth_user == std::optional<std::string>("alice"));
  auto content = h.spool.read_content_sync(*spool::QueueId::parse(queue_id_of(queued)));
  REQUIRE(content);
  CHECK(content->find("\t(Authenticated sender: alice)\r\n") != std::string::npos);
  CHECK(content->find(" with ESMTPA id ") != std::string::npos);
}

TEST_CASE("AUTH PLAIN without an initial response gets an empty 334 challenge", "[auth]") {
  AuthHarness h;
  auto c = h.greeted();
  c.send("auth plain\r\n");
  CHECK(c.reply() == "334 ");
  c.send(plain("bob", kPassword) + "\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");
}

TEST_CASE("AUTH LOGIN as classic servers do it, after HELO, in lower case", "[auth]") {
  AuthHarness h;
  auto c = h.connect();
  c.reply();
  c.send("HELO old.client\r\n");
  CHECK(c.reply() == "250 mx.test");
  c.send("auth login\r\n");
  CHECK(c.reply() == "334 VXNlcm5hbWU6");
  c.send(b64("alice") + "\r\n");
  CHECK(c.reply() == "334 UGFzc3dvcmQ6");
  c.send(b64(kPassword) + "\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");

  SECTION("with the user name as initial response") {
    auto d = h.greeted();
    d.send("AUTH LOGIN " + b64("bob") + "\r\n");
    CHECK(d.reply() == "334 UGFzc3dvcmQ6");
    d.send(b64(kPassword) + "\r\n");
    CHECK(d.reply() == "235 2.7.0 Authentication successful");
  }
}

TEST_CASE("a wrong password is 535 after a delay and counts as an error", "[auth]") {
  auto cfg = test_config();
  cfg.limits.max_errors = 2;
  AuthHarness h(config::ListenerAuth::optional, cfg);
  auto c = h.greeted();
  c.send("AUTH PLAIN " + plain("alice", "wrong") + "\r\n");
  CHECK(c.reply() == "535 5.7.8 Authentication credentials invalid");
  c.send("AUTH PLAIN " + plain("nobody", kPassword) + "\r\n");
  CHECK(c.reply() == "535 5.7.8 Authentication credentials invalid");
  CHECK(c.reply().rfind("421 4.7.0", 0) == 0);  // the error limit
  CHECK(c.closed());
}

TEST_CASE("AUTH cancelled with * and malformed base64", "[auth]") {
  AuthHarness h;
  auto c = h.greeted();
  c.send("AUTH LOGIN\r\n");
  CHECK(c.reply() == "334 VXNlcm5hbWU6");
  c.send("*\r\n");
  CHECK(c.reply() == "501 5.7.0 Authentication aborted");
  c.send("AUTH PLAIN !!!notbase64\r\n");
  CHECK(c.reply() == "501 5.5.2 Cannot decode response");
  c.send("AUTH CRAM-MD5\r\n");
  CHECK(c.reply() == "504 5.5.4 Unrecognized authentication type");
  c.send("MAIL FROM:<a@example.org>\r\nAUTH PLAIN " + plain("alice", kPassword) + "\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "503 5.5.1 Bad sequence of commands: mail transaction in progress");
}

TEST_CASE("the password never reaches the log", "[auth]") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  {
    AuthHarness h;
    auto c = h.greeted();
    c.send("AUTH LOGIN\r\n" + b64("alice") + "\r\n" + b64(kPassword) + "\r\n");
    c.reply();
    c.reply();
    CHECK(c.reply() == "235 2.7.0 Authentication successful");
    c.send("QUIT\r\n");
    c.reply();
    CHECK(c.closed());
  }
  spdlog::set_default_logger(previous);
  auto log = out.str();
  CHECK(log.find("sasl_method=LOGIN, sasl_username=alice") != std::string::npos);
  CHECK(log.find(kPassword) == std::string::npos);
  CHECK(log.find(b64(kPassword)) == std::string::npos);
}

TEST_CASE("auth: required refuses MAIL before AUTH with 530", "[auth]") {
  AuthHarness h(config::ListenerAuth::required);
  auto c = h.greeted();
  c.send("MAIL FROM:<alice@example.org>\r\n");
  CHECK(c.reply() == "530 5.7.0 Authentication required");
  c.send("AUTH PLAIN " + plain("alice", kPassword) + "\r\nMAIL FROM:<alice@example.org>\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");
  CHECK(c.reply() == "250 2.1.0 Ok");
}

TEST_CASE("the per-user sender restriction", "[auth]") {
  AuthHarness h;
  auto c = h.greeted();
  c.send("AUTH PLAIN " + plain("alice", kPassword) + "\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");
  c.send("MAIL FROM:<eve@example.org>\r\n");
  CHECK(c.reply() == "553 5.7.1 Sender address rejected: not owned by user alice");
  c.send("MAIL FROM:<>\r\n");  // the null sender only when "<>" is listed
  CHECK(c.reply() == "553 5.7.1 Sender address rejected: not owned by user alice");
  c.send("MAIL FROM:<anyone@corp.example>\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
}

TEST_CASE("a client outside allowed_networks relays only after AUTH", "[auth]") {
  auto cfg = test_config();
  cfg.allowed_networks.clear();
  AuthHarness h(config::ListenerAuth::optional, cfg);
  auto c = h.greeted();
  c.send("MAIL FROM:<bob@example.org>\r\nRCPT TO:<x@example.net>\r\nRSET\r\n");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "554 5.7.1 Relay access denied");
  CHECK(c.reply() == "250 2.0.0 Ok");
  c.send("AUTH PLAIN " + plain("bob", kPassword) + "\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<x@example.net>\r\n");
  CHECK(c.reply() == "235 2.7.0 Authentication successful");
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");
}

TEST_CASE("Authenticator::join(): a check in flight resumes its caller on an io_context that no longer runs",
          "[auth]") {
  asio::io_context io;
  auto auth = authenticator();
  std::optional<bool> ok;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::string user = "alice", password = kPassword;  // named: no temporaries in co_await
        ok = co_await auth->verify(user, password);
      },
      asio::detached);
  io.poll();     // the check is handed to the pool; io is then left alone
  auth->join();  // returns once the result is queued on io
  io.poll();     // so this resumes the caller, without waiting for anything
  CHECK(ok == std::optional<bool>(true));
}
