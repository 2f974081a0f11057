// The pure parts of the server: trace headers, header completion, connection counting, reply
// formatting, relay policy.
#include <catch2/catch.hpp>

#include <boost/asio/ip/address.hpp>

#include "mailhop/server/connection_limits.hpp"
#include "mailhop/server/policy.hpp"
#include "mailhop/server/response.hpp"
#include "mailhop/server/trace.hpp"

using namespace mailhop;
using namespace mailhop::server;
using boost::asio::ip::make_address;

namespace {

const std::string kDate = "Date: Sun, 22 Nov 2026 03:11:47 +0000\r\n";
const std::string kId = "Message-ID: <ID@mx.test>\r\n";

// Feeds `content` in pieces of `step` bytes.
std::string complete(std::string_view content, std::size_t step, std::size_t bound = 64 * 1024) {
  HeaderCompleter completer(kDate, kId, bound);
  std::string out;
  for (std::size_t i = 0; i < content.size(); i += step) completer.feed(content.substr(i, step), out);
  completer.finish(out);
  return out;
}

}  // namespace

TEST_CASE("Received: names the client, us, the protocol, the ID and the one recipient", "[trace]") {
  TraceInfo info;
  info.helo = "client.test";
  info.client_ip = "192.0.2.7";
  info.hostname = "mx.test";
  info.protocol = "ESMTP";
  info.queue_id = "ABC123";
  info.recipient = "bob@example.net";
  info.when = util::SystemTime{} + std::chrono::seconds(1795317107);
  CHECK(received_header(info) ==
        "Received: from client.test (192.0.2.7 [192.0.2.7])\r\n\tby mx.test (mailhop) with ESMTP id ABC123\r\n"
        "\tfor <bob@example.net>; " + util::rfc5322_date(info.when) + "\r\n");
  info.recipient.reset();
  info.client_ip = "2001:db8::1";
  info.helo = "evil\r\nX-Injected: 1";
  auto header = received_header(info);
  CHECK(header.rfind("Received: from evil??X-Injected:?1 (2001:db8::1 [IPv6:2001:db8::1])\r\n", 0) == 0);
  CHECK(header.find("id ABC123;\r\n\t") != std::string::npos);
}

TEST_CASE("HeaderCompleter inserts missing fields at the end of the header section", "[trace]") {
  for (std::size_t step : {1, 3, 7, 1000}) {
    INFO("step " << step);
    CHECK(complete("Subject: x\r\n\r\nbody\r\n", step) == "Subject: x\r\n" + kDate + kId + "\r\nbody\r\n");
    CHECK(complete("Subject: x\r\n folded\r\nDate: y\r\n\r\nbody\r\n", step) ==
          "Subject: x\r\n folded\r\nDate: y\r\n" + kId + "\r\nbody\r\n");
    CHECK(complete("message-id: <a@b>\r\nDATE: z\r\n\r\n", step) == "message-id: <a@b>\r\nDATE: z\r\n\r\n");
    CHECK(complete("just a body line\r\n", step) == kDate + kId + "just a body line\r\n");
    CHECK(complete("Subject: only headers\r\n", step) == "Subject: only headers\r\n" + kDate + kId);
    CHECK(complete("", step) == kDate + kId);
  }
}

TEST_CASE("HeaderCompleter holds at most its bound, then cuts at a line end", "[trace]") {
  std::string header;
  for (int i = 0; i < 100; ++i) header += "X-Long-" + std::to_string(i) + ": value\r\n";
  std::string content = header + "\r\nbody\r\n";
  HeaderCompleter completer(kDate, kId, 200);
  std::string out;
  completer.feed(std::string_view(content).substr(0, 250), out);
  // Past the bound the held part was released, cut at a line end, with the fields after it.
  REQUIRE_FALSE(out.empty());
  auto date = out.find(kDate);
  REQUIRE(date != std::string::npos);
  CHECK(out.substr(date - 2, 2) == "\r\n");
  completer.feed(std::string_view(content).substr(250), out);
  completer.finish(out);
  CHECK(out.size() == content.size() + kDate.size() + kId.size());
}

TEST_CASE("connection limits: total, per address, exemption, release", "[limits]") {
  ConnectionLimits limits(3, 2);
  auto a = make_address("192.0.2.1");
  auto b = make_address("192.0.2.2");
  auto s1 = limits.acquire(a, false);
  auto s2 = limits.acquire(a, false);
  REQUIRE(s1.slot);
  REQUIRE(s2.slot);
  auto s3 = limits.acquire(a, false);
  CHECK_FALSE(s3.slot);
  CHECK(s3.refusal == ConnectionLimits::Refusal::per_ip);
  auto s4 = limits.acquire(a, true);  // exempt from the per-IP limit
  REQUIRE(s4.slot);
  auto s5 = limits.acquire(b, true);  // not from the total
  CHECK_FALSE(s5.slot);
  CHECK(s5.refusal == ConnectionLimits::Refusal::total);
  CHECK(limits.total() == 3);
  CHECK(limits.from(a) == 3);
  s1.slot.reset();
  CHECK(limits.total() == 2);
  CHECK(limits.acquire(b, false).slot);  // acquired and released at once
  CHECK(limits.total() == 2);
  CHECK(limits.from(b) == 0);
}

TEST_CASE("replies: single and multi-line with enhanced codes", "[response]") {
  CHECK(Response(250, "2.0.0", "Ok").wire() == "250 2.0.0 Ok\r\n");
  CHECK(Response(220, "", "mx ESMTP mailhop").wire() == "220 mx ESMTP mailhop\r\n");
  CHECK(Response(214, "2.0.0", "a", {"b", "c"}).wire() == "214-2.0.0 a\r\n214-2.0.0 b\r\n214 2.0.0 c\r\n");
  CHECK(Response(250, "", "mx", {"PIPELINING"}).wire() == "250-mx\r\n250 PIPELINING\r\n");
}

TEST_CASE("relay policy: allowed networks only, IPv4-mapped addresses included", "[policy]") {
  config::Config config;
  config.allowed_networks = {*config::Network::parse("127.0.0.0/8")};
  CHECK_FALSE(check_relay(config, {make_address("127.0.0.1"), false}));
  CHECK_FALSE(check_relay(config, {make_address("192.0.2.1"), true}));
  auto refused = check_relay(config, {make_address("192.0.2.1"), false});
  REQUIRE(refused);
  CHECK(refused->wire() == "554 5.7.1 Relay access denied\r\n");
  CHECK(canonical_address(make_address("::ffff:127.0.0.1")).to_string() == "127.0.0.1");
  CHECK(exempt_from_per_ip_limit(config, make_address("127.0.0.9")));
  CHECK_FALSE(exempt_from_per_ip_limit(config, make_address("10.0.0.1")));
}

TEST_CASE("protocol names of RFC 3848 and RFC 6531 §3.7.3", "[trace]") {
  CHECK(trace_protocol(false, false, false, false) == "SMTP");
  CHECK(trace_protocol(true, false, false, false) == "ESMTP");
  CHECK(trace_protocol(true, false, true, false) == "ESMTPS");
  CHECK(trace_protocol(true, false, false, true) == "ESMTPA");
  CHECK(trace_protocol(true, false, true, true) == "ESMTPSA");
  CHECK(trace_protocol(false, false, false, true) == "ESMTPA");  // HELO, then AUTH: an extension used
  CHECK(trace_protocol(true, true, true, true) == "UTF8SMTPSA");
}

TEST_CASE("Received: with TLS and AUTH comments as Postfix writes them", "[trace]") {
  TraceInfo info;
  info.helo = "client.test";
  info.client_ip = "192.0.2.1";
  info.hostname = "mx.test";
  info.protocol = "ESMTPSA";
  info.tls = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)";
  info.auth_user = "al(ice)\r\nX";  // cannot close the comment or end the line
  info.queue_id = "ID";
  auto header = received_header(info);
  CHECK(header.rfind("Received: from client.test (192.0.2.1 [192.0.2.1])\r\n"
                     "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
                     "\t(Authenticated sender: al?ice???X)\r\n"
                     "\tby mx.test (mailhop) with ESMTPSA id ID;\r\n",
                     0) == 0);
}
