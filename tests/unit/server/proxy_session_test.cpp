// A Session on a proxy_protocol listener: the header read before the greeting (byte by byte
// too), the client it names in the envelope and Received:, nothing after it consumed with it,
// and the refusals (untrusted peer, silence, a stop request) closing without a greeting.
#include <string>

#include "harness.hpp"
#include "mailhop/server/credentials.hpp"
#include "mailhop/spool/queue_id.hpp"

using namespace mailhop;
using namespace mailhop::server::test;

namespace {

config::Config proxied_config() {
  auto c = test_config();
  c.trusted_proxies = {network("127.0.0.1/32")};
  c.allowed_networks = {network("192.0.2.0/24")};  // not the proxy's own 127.0.0.1
  return c;
}

std::string v2_tcp4(const std::string& block_tail = "") {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += "\x21\x11";
  std::string block = std::string("\xc0\x00\x02\x0a\x7f\x00\x00\x01\x9c\x40\x00\x19", 12) + block_tail;
  h += static_cast<char>(block.size() >> 8);
  h += static_cast<char>(block.size() & 0xff);
  return h + block;
}

const std::string kV2Local = std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);
const std::string kV1 = "PROXY TCP4 192.0.2.10 127.0.0.1 40000 25\r\n";

}  // namespace

TEST_CASE("proxy: a v1 header byte by byte; the real client is in the envelope and Received:", "[session][proxy]") {
  SessionHarness h(proxied_config());
  h.listener.proxy_protocol = true;
  auto c = h.connect();
  for (char byte : kV1) {
    // Nothing is said before the header is complete.
    CHECK_FALSE(c.wait_readable(std::chrono::milliseconds(0)));
    c.send(std::string(1, byte));
  }
  REQUIRE(c.reply() == "220 mx.test ESMTP mailhop");
  c.send("EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  CHECK(c.reply().rfind("250-mx.test", 0) == 0);
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "250 2.1.5 Ok");  // 192.0.2.10 is in allowed_networks; 127.0.0.1 is not
  CHECK(c.reply().rfind("354 ", 0) == 0);
  c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
  auto queued = c.reply();
  REQUIRE(queued.rfind("250 2.0.0 ", 0) == 0);
  auto envelopes = h.spool.list();
  REQUIRE(envelopes.size() == 1);
  CHECK(envelopes[0].client_ip == "192.0.2.10");
  auto content = h.spool.read_content_sync(envelopes[0].id);
  REQUIRE(content);
  CHECK(content->rfind("Received: from client.test (192.0.2.10 [192.0.2.10])\r\n", 0) == 0);
}

TEST_CASE("proxy: what follows the header in the same segment stays for SMTP", "[session][proxy]") {
  SessionHarness h(proxied_config());
  h.listener.proxy_protocol = true;
  for (const std::string& header : {kV1, v2_tcp4(), v2_tcp4(std::string("\x04\x00\x02zz", 5)), kV2Local}) {
    auto c = h.connect();
    c.send(header + "EHLO client.test\r\nNOOP\r\n");
    CHECK(c.reply() == "220 mx.test ESMTP mailhop");
    CHECK(c.reply().rfind("250-mx.test", 0) == 0);
    CHECK(c.reply() == "250 2.0.0 Ok");
  }
}

TEST_CASE("proxy: LOCAL keeps the socket's address", "[session][proxy]") {
  SessionHarness h(proxied_config());
  h.listener.proxy_protocol = true;
  auto c = h.connect();
  c.send(kV2Local + "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n");
  CHECK(c.reply() == "220 mx.test ESMTP mailhop");
  CHECK(c.reply().rfind("250-mx.test", 0) == 0);
  CHECK(c.reply() == "250 2.1.0 Ok");
  CHECK(c.reply() == "554 5.7.1 Relay access denied");  // 127.0.0.1 is not in allowed_networks
}

TEST_CASE("proxy: AUTH without TLS is for loopback clients, judged by the proxied address", "[session][proxy][auth]") {
  SessionHarness h(proxied_config());
  h.listener.proxy_protocol = true;
  h.listener.auth = config::ListenerAuth::optional;
  server::HashParams cheap;
  cheap.scrypt_ln = 10;
  auto users = server::UsersFile::parse("alice:" + server::make_hash("pw", cheap) + "\n", "users");
  REQUIRE(users.users);
  h.auth = std::make_shared<server::Authenticator>(std::move(*users.users));
  // The socket's peer is 127.0.0.1 in both cases; only the header's address differs.
  auto remote = h.connect();
  remote.send(kV1 + "EHLO client.test\r\n");
  CHECK(remote.reply() == "220 mx.test ESMTP mailhop");
  CHECK(remote.reply().find("AUTH") == std::string::npos);
  auto local = h.connect();
  local.send("PROXY TCP4 127.0.0.1 127.0.0.1 40000 25\r\nEHLO client.test\r\n");
  CHECK(local.reply() == "220 mx.test ESMTP mailhop");
  CHECK(local.reply().find("250-AUTH PLAIN LOGIN") != std::string::npos);
}

TEST_CASE("proxy: refusals close without a greeting", "[session][proxy]") {
  SECTION("a peer outside trusted_proxies") {
    auto config = proxied_config();
    config.trusted_proxies = {network("10.0.0.1/32")};
    SessionHarness h(config);
    h.listener.proxy_protocol = true;
    auto c = h.connect();
    c.send(kV1);
    CHECK(c.closed());
  }
  SECTION("an invalid header") {
    SessionHarness h(proxied_config());
    h.listener.proxy_protocol = true;
    auto c = h.connect();
    c.send("EHLO client.test\r\n");
    CHECK(c.closed());
  }
  SECTION("an invalid header shorter than the shortest valid one, at once, not at the timeout") {
    SessionHarness h(proxied_config());
    h.listener.proxy_protocol = true;
    auto c = h.connect();
    c.send("PROXY TCP4 x\r\n");  // 14 bytes; "PROXY UNKNOWN\r\n" has 15
    CHECK(c.closed(std::chrono::milliseconds(5000)));  // the command timeout is 30 s
  }
  SECTION("a proxy that says nothing until the command timeout") {
    auto config = proxied_config();
    config.limits.command_timeout = std::chrono::seconds(1);
    SessionHarness h(config);
    h.listener.proxy_protocol = true;
    auto c = h.connect();
    c.send("PROXY TCP4 ");
    CHECK(c.closed());
  }
  SECTION("a stop request while the header is awaited") {
    SessionHarness h(proxied_config());
    h.listener.proxy_protocol = true;
    auto c = h.connect();
    c.send("PROXY TCP4 192.0.2.10");
    CHECK_FALSE(c.wait_readable(std::chrono::milliseconds(100)));
    h.shutdown.request();
    CHECK(c.closed());
  }
}
