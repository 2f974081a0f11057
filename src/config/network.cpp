// Network prefixes (allowed_networks, trusted_proxies) and socket addresses (listen,
// admin.listen) as written in the configuration.
//
// SECURITY: Network::contains decides who may relay without AUTH. An IPv4 client that reaches
// an IPv6 (dual-stack) socket appears as ::ffff:a.b.c.d; it must match the IPv4 prefixes, or
// 127.0.0.0/8 would not cover local clients on a [::] listener.
#include <algorithm>
#include <charconv>

#include "mailhop/config/config.hpp"

namespace mailhop::config {
namespace ip = boost::asio::ip;

namespace {

// true when the first `bits` bits of a and b are equal.
template <std::size_t N>
bool same_prefix(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned bits) {
  std::size_t full = bits / 8;
  if (!std::equal(a.begin(), a.begin() + full, b.begin())) return false;
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

// Clears the bits after `bits`.
template <std::size_t N>
std::array<unsigned char, N> masked(std::array<unsigned char, N> a, unsigned bits) {
  for (std::size_t i = 0; i < N; ++i) {
    unsigned keep = bits >= (i + 1) * 8 ? 8 : (bits > i * 8 ? bits - i * 8 : 0);
    a[i] &= static_cast<unsigned char>(0xff00 >> keep);
  }
  return a;
}

std::optional<unsigned> parse_number(std::string_view text) {
  unsigned value = 0;
  if (text.empty() || text.size() > 6) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void set(std::string* why, std::string text) {
  if (why) *why = std::move(text);
}

}  // namespace

std::optional<Network> Network::parse(std::string_view text, std::string* why) {
  auto quoted = "\"" + std::string(text) + "\"";
  auto slash = text.find('/');
  std::string host(text.substr(0, slash));
  boost::system::error_code ec;
  auto address = ip::make_address(host, ec);
  if (ec || host.find('%') != std::string::npos) {
    set(why, quoted + " is not a network (use e.g. 10.0.0.0/8 or 2001:db8::/32)");
    return std::nullopt;
  }
  unsigned max_bits = address.is_v4() ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    auto parsed = parse_number(text.substr(slash + 1));
    if (!parsed || *parsed > max_bits) {
      set(why, quoted + ": the prefix length must be a number from 0 to " + std::to_string(max_bits));
      return std::nullopt;
    }
    bits = *parsed;
  }
  ip::address network;
  if (address.is_v4()) {
    network = ip::address_v4(masked(address.to_v4().to_bytes(), bits));
  } else {
    network = ip::address_v6(masked(address.to_v6().to_bytes(), bits));
  }
  if (network != address) {
    set(why, quoted + " has host bits set (did you mean " + network.to_string() + "/" + std::to_string(bits) + "?)");
    return std::nullopt;
  }
  return Network{network, bits, std::string(text)};
}

bool Network::contains(const ip::address& a) const {
  if (address.is_v4()) {
    ip::address_v4 v4;
    if (a.is_v4()) {
      v4 = a.to_v4();
    } else if (a.to_v6().is_v4_mapped()) {
      v4 = ip::make_address_v4(ip::v4_mapped, a.to_v6());
    } else {
      return false;
    }
    return same_prefix(v4.to_bytes(), address.to_v4().to_bytes(), prefix_length);
  }
  auto v6 = a.is_v6() ? a.to_v6() : ip::make_address_v6(ip::v4_mapped, a.to_v4());
  return same_prefix(v6.to_bytes(), address.to_v6().to_bytes(), prefix_length);
}

std::optional<SocketAddress> parse_socket_address(std::string_view text, std::string* why) {
  auto quoted = "\"" + std::string(text) + "\"";
  auto usage = quoted + " is not an address with a port (use IPv4 \"127.0.0.1:2525\" or IPv6 \"[::1]:2525\")";
  std::string host;
  std::string_view port_text;
  bool v6 = false;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      set(why, usage);
      return std::nullopt;
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      set(why, usage);
      return std::nullopt;
    }
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      set(why, quoted + ": an IPv6 address needs brackets, as in \"[" + host + "]:" + std::string(port_text) + "\"");
      return std::nullopt;
    }
  }
  boost::system::error_code ec;
  auto address = ip::make_address(host, ec);
  if (ec || address.is_v6() != v6 || host.find('%') != std::string::npos) {
    set(why, usage);
    return std::nullopt;
  }
  auto port = parse_number(port_text);
  if (!port || *port < 1 || *port > 65535) {
    set(why, quoted + ": the port must be a number from 1 to 65535");
    return std::nullopt;
  }
  return SocketAddress{address, static_cast<std::uint16_t>(*port)};
}

std::string to_string(const Endpoint& e) {
  bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

}  // namespace mailhop::config
