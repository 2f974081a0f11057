// Network prefixes and socket addresses: parsing, membership (IPv4-mapped IPv6 included) and
// the relay decision built on them.
#include <catch2/catch.hpp>

#include "helpers.hpp"

using namespace mailhop::config;
using boost::asio::ip::make_address;

namespace {
Network net(std::string_view text) {
  auto n = Network::parse(text);
  REQUIRE(n);
  return *n;
}
}  // namespace

TEST_CASE("Network::parse") {
  auto n = net("10.0.0.0/8");
  CHECK(n.address == make_address("10.0.0.0"));
  CHECK(n.prefix_length == 8);
  CHECK(n.text == "10.0.0.0/8");
  CHECK(net("192.0.2.1").prefix_length == 32);
  CHECK(net("::1").prefix_length == 128);
  CHECK(net("2001:db8::/32").prefix_length == 32);
  CHECK(net("0.0.0.0/0").is_everything());
  CHECK(net("::/0").is_everything());
  CHECK_FALSE(net("10.0.0.0/8").is_everything());

  std::string why;
  CHECK_FALSE(Network::parse("10.0.0.1/8", &why));
  CHECK(why == "\"10.0.0.1/8\" has host bits set (did you mean 10.0.0.0/8?)");
  CHECK_FALSE(Network::parse("2001:db8::1/32", &why));
  CHECK(why == "\"2001:db8::1/32\" has host bits set (did you mean 2001:db8::/32?)");
  CHECK_FALSE(Network::parse("10.0.0.0/33"));
  CHECK_FALSE(Network::parse("10.0.0.0/"));
  CHECK_FALSE(Network::parse("10.0.0.0/-1"));
  CHECK_FALSE(Network::parse("10.0.0.0/8x"));
  CHECK_FALSE(Network::parse("::/129"));
  CHECK_FALSE(Network::parse("10.0.0/8"));
  CHECK_FALSE(Network::parse("localhost"));
  CHECK_FALSE(Network::parse(""));
}

TEST_CASE("Network::contains") {
  auto loopback = net("127.0.0.0/8");
  CHECK(loopback.contains(make_address("127.0.0.1")));
  CHECK(loopback.contains(make_address("127.255.255.255")));
  CHECK_FALSE(loopback.contains(make_address("128.0.0.1")));
  CHECK_FALSE(loopback.contains(make_address("::1")));

  auto odd = net("192.0.2.128/25");  // a prefix that ends inside a byte
  CHECK(odd.contains(make_address("192.0.2.200")));
  CHECK_FALSE(odd.contains(make_address("192.0.2.127")));

  SECTION("IPv4 clients on a dual-stack socket (::ffff:a.b.c.d) match IPv4 networks") {
    CHECK(loopback.contains(make_address("::ffff:127.0.0.1")));
    CHECK_FALSE(loopback.contains(make_address("::ffff:10.0.0.1")));
    CHECK(net("10.1.0.0/16").contains(make_address("::ffff:10.1.2.3")));
    CHECK(net("::ffff:10.0.0.0/104").contains(make_address("10.3.4.5")));
  }
  SECTION("IPv6") {
    auto doc = net("2001:db8::/32");
    CHECK(doc.contains(make_address("2001:db8:1::5")));
    CHECK_FALSE(doc.contains(make_address("2001:db9::1")));
    CHECK_FALSE(doc.contains(make_address("10.0.0.1")));
    CHECK(net("::1/128").contains(make_address("::1")));
    CHECK_FALSE(net("::1/128").contains(make_address("::2")));
  }
  SECTION("everything") {
    CHECK(net("0.0.0.0/0").contains(make_address("203.0.113.9")));
    CHECK(net("0.0.0.0/0").contains(make_address("::ffff:203.0.113.9")));
    CHECK_FALSE(net("0.0.0.0/0").contains(make_address("2001:db8::1")));
    CHECK(net("::/0").contains(make_address("2001:db8::1")));
  }
}

TEST_CASE("parse_socket_address") {
  auto a = parse_socket_address("127.0.0.1:2525");
  REQUIRE(a);
  CHECK(a->address == make_address("127.0.0.1"));
  CHECK(a->port == 2525);
  auto b = parse_socket_address("[::1]:25");
  REQUIRE(b);
  CHECK(b->address == make_address("::1"));
  CHECK(b->port == 25);
  CHECK(parse_socket_address("0.0.0.0:65535"));
  CHECK(parse_socket_address("[::]:1"));
  for (auto bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:25x", "localhost:25",
                   "::1:25", "[::1]", "[::1]25", "[127.0.0.1]:25", "[fe80::1%eth0]:25", ":25", ""}) {
    INFO(bad);
    std::string why;
    CHECK_FALSE(parse_socket_address(bad, &why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("may_relay_unauthenticated: only clients in allowed_networks") {
  auto c = mailhop::config::test::load_ok("allowed_networks: [\"127.0.0.0/8\", \"::1/128\", \"10.20.0.0/16\"]\n");
  CHECK(c.may_relay_unauthenticated(make_address("127.0.0.1")));
  CHECK(c.may_relay_unauthenticated(make_address("::1")));
  CHECK(c.may_relay_unauthenticated(make_address("::ffff:127.0.0.1")));
  CHECK(c.may_relay_unauthenticated(make_address("10.20.3.4")));
  CHECK(c.may_relay_unauthenticated(make_address("::ffff:10.20.3.4")));
  CHECK_FALSE(c.may_relay_unauthenticated(make_address("10.21.0.1")));
  CHECK_FALSE(c.may_relay_unauthenticated(make_address("203.0.113.5")));
  CHECK_FALSE(c.may_relay_unauthenticated(make_address("2001:db8::1")));

  auto none = mailhop::config::test::load_ok("allowed_networks: []\n");
  CHECK_FALSE(none.may_relay_unauthenticated(make_address("127.0.0.1")));
}
