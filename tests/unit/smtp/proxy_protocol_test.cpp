// The PROXY protocol parser: v1 TCP4/TCP6/UNKNOWN, v2 PROXY/LOCAL and its families, every
// refusal, and the incremental contract (reading exactly `need` bytes each time ends exactly
// at the header's end, however the bytes are split).
#include <catch2/catch.hpp>

#include <string>

#include "mailhop/smtp/proxy_protocol.hpp"

using namespace mailhop::smtp;
using Status = ProxyParse::Status;

namespace {

std::string v2(unsigned char ver_cmd, unsigned char family, std::string block) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(family);
  h += static_cast<char>((block.size() >> 8) & 0xff);
  h += static_cast<char>(block.size() & 0xff);
  return h + block;
}

std::string bytes(std::initializer_list<unsigned> values) {
  std::string s;
  for (auto v : values) s += static_cast<char>(v);
  return s;
}

// Feeds `wire` the way the server reads: exactly `need` bytes at a time. Returns the final
// result and checks that no read went past the header.
ProxyParse feed_as_server(const std::string& wire) {
  std::string received;
  for (;;) {
    auto p = parse_proxy_header(received);
    if (p.status != Status::need_more) return p;
    REQUIRE(p.need > 0);
    if (received.size() + p.need > wire.size()) return p;  // the peer sent no more: would wait
    received += wire.substr(received.size(), p.need);
  }
}

ProxyParse parse(const std::string& s) { return parse_proxy_header(s); }

}  // namespace

TEST_CASE("v1 TCP4 gives the client and the address it reached", "[proxy]") {
  auto p = parse("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\nEHLO x\r\n");
  REQUIRE(p.status == Status::complete);
  CHECK(p.version == 1);
  CHECK(p.consumed == 45);
  REQUIRE(p.source);
  CHECK(p.source->address.to_string() == "192.0.2.10");
  CHECK(p.source->port == 56324);
  REQUIRE(p.destination);
  CHECK(p.destination->address.to_string() == "198.51.100.1");
  CHECK(p.destination->port == 25);
}

TEST_CASE("v1 TCP6, compressed, full and with a dotted tail", "[proxy]") {
  auto p = parse("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n");
  REQUIRE(p.status == Status::complete);
  CHECK(p.source->address.to_string() == "2001:db8::1");
  CHECK(p.source->port == 65535);
  CHECK(p.destination->port == 0);
  p = parse("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n");
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == 104);
  p = parse("PROXY TCP6 ::ffff:192.0.2.1 :: 1 2\r\n");
  REQUIRE(p.status == Status::complete);
  CHECK(p.source->address.is_v6());
}

TEST_CASE("v1 UNKNOWN keeps the connection's addresses and ignores the rest of the line", "[proxy]") {
  auto p = parse("PROXY UNKNOWN\r\n");
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == 15);
  CHECK_FALSE(p.source);
  CHECK_FALSE(p.destination);
  // The longest line the spec allows: 107 bytes with the CRLF.
  std::string longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  REQUIRE(longest.size() == kProxyV1MaxLength);
  p = parse(longest);
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == kProxyV1MaxLength);
  CHECK_FALSE(p.source);
  CHECK(parse("PROXY UNKNOWNX\r\n").status == Status::invalid);
}

TEST_CASE("v1 refusals", "[proxy]") {
  auto refused = [](const std::string& s) {
    auto p = parse(s);
    INFO(s);
    CHECK(p.status == Status::invalid);
    CHECK_FALSE(p.error.empty());
    return p.error;
  };
  // Spacing: exactly one space everywhere.
  refused("PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n");
  refused("PROXY TCP4\r\n");
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n");
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n");
  // Protocols.
  CHECK(refused("PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n").find("TCP4, TCP6 or UNKNOWN") != std::string::npos);
  refused("PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n");
  // Address families must match the protocol.
  CHECK(refused("PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n").find("source address") != std::string::npos);
  CHECK(refused("PROXY TCP4 192.0.2.1 2001:db8::1 1 2\r\n").find("destination address") != std::string::npos);
  refused("PROXY TCP6 192.0.2.1 2001:db8::1 1 2\r\n");
  refused("PROXY TCP6 2001:db8::1 192.0.2.1 1 2\r\n");
  // IPv4: four parts, 0..255, no leading zeroes.
  refused("PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0.2.1.5 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 192.0..1 192.0.2.2 1 2\r\n");
  refused("PROXY TCP4 +1.0.2.1 192.0.2.2 1 2\r\n");
  // IPv6: no zone, no garbage, no second "::".
  refused("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n");
  refused("PROXY TCP6 2001:db8::1::2 ::1 1 2\r\n");
  refused("PROXY TCP6 2001:db8:g::1 ::1 1 2\r\n");
  // Ports: 0..65535, no leading zeroes, digits only.
  CHECK(refused("PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n").find("source port") != std::string::npos);
  CHECK(refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 0025\r\n").find("destination port") != std::string::npos);
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n");
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 999999\r\n");
  // Line ends: CRLF only, within 107 bytes; nothing unprintable.
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n");
  refused("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX\r\n");
  refused("PROXY UNKNOWN \x01\r\n");
  CHECK(refused("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n").find("107") != std::string::npos);
  // Not the protocol at all: an SMTP client that talks first.
  refused("EHLO client.example\r\n");
  refused("PROXZ TCP4 192.0.2.1 192.0.2.2 1 2\r\n");
}

TEST_CASE("v1 incremental: a wrong prefix is refused at once, a right one asks for more", "[proxy]") {
  CHECK(parse("").status == Status::need_more);
  CHECK(parse("").need == 8);
  CHECK(parse("E").status == Status::invalid);
  CHECK(parse("PRO").status == Status::need_more);
  CHECK(parse("PRO").need == 5);
  CHECK(parse("PROX!").status == Status::invalid);
  // After "PROXY TCP4 " the shortest possible line is 32 bytes.
  auto p = parse("PROXY TCP4 ");
  REQUIRE(p.status == Status::need_more);
  CHECK(p.version == 1);
  CHECK(p.need == 32 - 11);
  p = parse("PROXY TCP6 ");
  CHECK(p.need == 22 - 11);
  p = parse("PROXY UNKNOWN");
  CHECK(p.need == 2);  // to the shortest line, 15 bytes
  p = parse("PROXY UNKNOWN x");
  CHECK(p.need == 1);  // then byte by byte: a bare LF is refused when it comes
  p = parse("PROXY UNKNOWN\r");
  CHECK(p.need == 1);
  // Never a read that could cross the 107-byte limit.
  std::string almost = "PROXY UNKNOWN " + std::string(91, 'x');
  REQUIRE(almost.size() == 105);
  p = parse(almost);
  REQUIRE(p.status == Status::need_more);
  CHECK(p.need == 1);
  CHECK(parse(almost + "x").status == Status::invalid);  // 106 bytes, no room for CRLF
  CHECK(parse(almost + "\r").need == 1);
}

TEST_CASE("reading exactly `need` bytes stops at the header's end, for every header kind", "[proxy]") {
  const std::string after = "EHLO client.example\r\n";
  for (const std::string& header :
       {std::string("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n"), std::string("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
        std::string("PROXY TCP6 :: :: 0 0\r\n"), std::string("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
        std::string("PROXY UNKNOWN\r\n"), std::string("PROXY UNKNOWN 1 2 3\r\n"),
        v2(0x21, 0x11, bytes({192, 0, 2, 10, 127, 0, 0, 1, 0x9c, 0x40, 0x09, 0xc5})), v2(0x20, 0x00, ""),
        v2(0x21, 0x21, std::string(36, '\x01') + bytes({0x03, 0x00, 0x04, 'a', 'b', 'c', 'd'}))}) {
    INFO(header);
    auto p = feed_as_server(header + after);
    REQUIRE(p.status == Status::complete);
    CHECK(p.consumed == header.size());
  }
}

TEST_CASE("v2 PROXY over TCP/IPv4 and TCP/IPv6", "[proxy]") {
  auto p = parse(v2(0x21, 0x11, bytes({192, 0, 2, 10, 127, 0, 0, 1, 0x9c, 0x40, 0x09, 0xc5})));
  REQUIRE(p.status == Status::complete);
  CHECK(p.version == 2);
  CHECK(p.consumed == 28);
  REQUIRE(p.source);
  CHECK(p.source->address.to_string() == "192.0.2.10");
  CHECK(p.source->port == 40000);
  CHECK(p.destination->address.to_string() == "127.0.0.1");
  CHECK(p.destination->port == 2501);

  std::string block(16, '\0');
  block[0] = '\x20';
  block[1] = '\x01';
  block[2] = '\x0d';
  block[3] = '\xb8';
  block[15] = '\x07';
  block += std::string(15, '\0') + "\x01";
  block += bytes({0x01, 0xbb, 0x00, 0x19});
  p = parse(v2(0x21, 0x21, block));
  REQUIRE(p.status == Status::complete);
  CHECK(p.source->address.to_string() == "2001:db8::7");
  CHECK(p.source->port == 443);
  CHECK(p.destination->address.to_string() == "::1");
  CHECK(p.destination->port == 25);
}

TEST_CASE("v2 TLVs after the addresses are skipped", "[proxy]") {
  // PP2_TYPE_AUTHORITY (0x02) "mx.example", then PP2_TYPE_NOOP (0x04).
  auto block = bytes({198, 51, 100, 7, 10, 0, 0, 1, 0x30, 0x39, 0x00, 0x19}) + bytes({0x02, 0x00, 0x0a}) +
               "mx.example" + bytes({0x04, 0x00, 0x00});
  auto p = parse(v2(0x21, 0x11, block) + "EHLO");
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == 16 + block.size());
  CHECK(p.source->address.to_string() == "198.51.100.7");
  CHECK(p.source->port == 12345);
}

TEST_CASE("v2 LOCAL, UNSPEC, UNIX and UDP keep the connection's own addresses", "[proxy]") {
  // LOCAL with an address block anyway: skipped by its length, addresses ignored (spec §2.2).
  auto p = parse(v2(0x20, 0x11, bytes({192, 0, 2, 10, 127, 0, 0, 1, 0, 1, 0, 2})));
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == 28);
  CHECK_FALSE(p.source);
  p = parse(v2(0x20, 0x00, ""));
  REQUIRE(p.status == Status::complete);
  CHECK(p.consumed == 16);
  CHECK_FALSE(p.source);
  p = parse(v2(0x21, 0x00, ""));  // PROXY with UNSPEC
  REQUIRE(p.status == Status::complete);
  CHECK_FALSE(p.source);
  p = parse(v2(0x21, 0x31, std::string(216, '\0')));  // UNIX stream
  REQUIRE(p.status == Status::complete);
  CHECK_FALSE(p.source);
  p = parse(v2(0x21, 0x12, bytes({192, 0, 2, 10, 127, 0, 0, 1, 0, 1, 0, 2})));  // UDP over IPv4
  REQUIRE(p.status == Status::complete);
  CHECK_FALSE(p.source);
}

TEST_CASE("v2 refusals", "[proxy]") {
  auto four = bytes({192, 0, 2, 10, 127, 0, 0, 1, 0, 1, 0, 2});
  auto refused = [](const std::string& s) {
    auto p = parse(s);
    CHECK(p.status == Status::invalid);
    CHECK(p.version == 2);
    CHECK_FALSE(p.error.empty());
    return p.error;
  };
  CHECK(refused(v2(0x11, 0x11, four)).find("version 1") != std::string::npos);
  CHECK(refused(v2(0x31, 0x11, four)).find("version 3") != std::string::npos);
  CHECK(refused(v2(0x22, 0x11, four)).find("command 2") != std::string::npos);
  CHECK(refused(v2(0x2f, 0x11, four)).find("command 15") != std::string::npos);
  CHECK(refused(v2(0x21, 0x41, four)).find("0x41") != std::string::npos);
  CHECK(refused(v2(0x21, 0x13, four)).find("0x13") != std::string::npos);
  // Address blocks too short for their family.
  CHECK(refused(v2(0x21, 0x11, four.substr(0, 11))).find("too short") != std::string::npos);
  CHECK(refused(v2(0x21, 0x21, std::string(35, '\0'))).find("IPv6") != std::string::npos);
  // The length bound is checked before anything is read past the fixed part.
  std::string huge = v2(0x21, 0x11, "").substr(0, 14) + bytes({0x08, 0x01});
  CHECK(refused(huge).find("exceeds") != std::string::npos);
  CHECK(parse(v2(0x21, 0x11, four + std::string(kProxyV2MaxLength - 12, '\0'))).status == Status::complete);
  // A damaged signature, wherever the damage is.
  std::string bad = v2(0x21, 0x11, four);
  bad[4] = 'x';
  refused(bad);
  bad = v2(0x21, 0x11, four);
  bad[11] = 'X';
  refused(bad);
  refused(std::string("\r\n\r\n\0\r\nQUIX\n", 12));
}

TEST_CASE("v2 incremental: the fixed part, then exactly the address block", "[proxy]") {
  auto header = v2(0x21, 0x11, bytes({192, 0, 2, 10, 127, 0, 0, 1, 0, 1, 0, 2}));
  auto p = parse(header.substr(0, 1));
  REQUIRE(p.status == Status::need_more);
  CHECK(p.version == 2);
  CHECK(p.need == 15);
  p = parse(header.substr(0, 16));
  REQUIRE(p.status == Status::need_more);
  CHECK(p.need == 12);
  p = parse(header.substr(0, 27));
  CHECK(p.need == 1);
  // A refusal comes as soon as the byte that makes it arrives.
  CHECK(parse(std::string("\r\n\r\n\0", 5) + "x").status == Status::invalid);
  CHECK(parse(std::string("\r\n\r\n\0\r\nQUIT\n", 12) + bytes({0x11, 0x11, 0, 12})).status == Status::invalid);
}
