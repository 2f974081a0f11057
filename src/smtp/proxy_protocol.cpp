// PROXY protocol header parser (haproxy's doc/proxy-protocol.txt, versions 1 and 2).
//
// SECURITY: the input comes from whoever connected; the caller decides whether the sender is a
// trusted proxy. Every field is checked exactly as the spec writes it (single spaces, no
// leading zeroes, address families that match), and the byte counts asked for never run past
// the header: a caller that reads exactly `need` bytes each time leaves the SMTP (or TLS) bytes
// that follow in the socket.
#include "mailhop/smtp/proxy_protocol.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace mailhop::smtp {

namespace {

using Status = ProxyParse::Status;

constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
// Shortest complete v1 lines by protocol (spec §2.1): "PROXY UNKNOWN\r\n",
// "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", "PROXY TCP6 :: :: 0 0\r\n".
constexpr std::size_t kV1ShortestUnknown = 15;
constexpr std::size_t kV1ShortestTcp4 = 32;
constexpr std::size_t kV1ShortestTcp6 = 22;
// Read before the version is known: no valid header of either version is shorter.
constexpr std::size_t kFirstRead = 8;

// v2 command (low nibble of byte 13) and family/transport (byte 14), spec §2.2.
constexpr unsigned kV2CommandLocal = 0x0;
constexpr unsigned kV2CommandProxy = 0x1;
constexpr unsigned kV2FamilyInet = 0x1;
constexpr unsigned kV2FamilyInet6 = 0x2;
constexpr unsigned kV2FamilyUnix = 0x3;
constexpr unsigned kV2TransportStream = 0x1;
constexpr unsigned kV2TransportDgram = 0x2;
constexpr std::size_t kV2Inet4Block = 2 * 4 + 2 * 2;
constexpr std::size_t kV2Inet6Block = 2 * 16 + 2 * 2;

ProxyParse need_more(int version, std::size_t need) {
  ProxyParse p;
  p.status = Status::need_more;
  p.version = version;
  p.need = need;
  return p;
}

ProxyParse invalid(int version, std::string why) {
  ProxyParse p;
  p.status = Status::invalid;
  p.version = version;
  p.error = std::move(why);
  return p;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A decimal number in [0, max] without leading zeroes (spec §2.1: "to avoid any possible
// confusion with octal numbers").
std::optional<unsigned> decimal(std::string_view s, unsigned max) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

// Exactly four decimal parts 0..255, one dot between each.
std::optional<boost::asio::ip::address> ipv4(std::string_view s) {
  boost::asio::ip::address_v4::bytes_type bytes{};
  for (std::size_t i = 0; i < 4; ++i) {
    auto dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return std::nullopt;
    auto part = decimal(s.substr(0, dot), 255);
    if (!part) return std::nullopt;
    bytes[i] = static_cast<unsigned char>(*part);
    s.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return boost::asio::ip::address(boost::asio::ip::address_v4(bytes));
}

// Hex groups and colons (one "::" at most), as inet_pton reads them; a dotted IPv4 tail is
// accepted as haproxy's own receiver does. No zone ("%eth0"): it means nothing on another host.
std::optional<boost::asio::ip::address> ipv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  for (char c : s) {
    if (!is_hex(c) && c != ':' && c != '.') return std::nullopt;
  }
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address_v6(std::string(s), ec);
  if (ec) return std::nullopt;
  return boost::asio::ip::address(a);
}

// "TCP4 src dst sport dport" or "TCP6 …" after "PROXY ": fields separated by exactly one space.
ProxyParse parse_v1_tcp(std::string_view fields, bool v6, std::size_t consumed) {
  std::vector<std::string_view> parts;
  for (;;) {
    auto space = fields.find(' ');
    parts.push_back(fields.substr(0, space));
    if (space == std::string_view::npos) break;
    fields.remove_prefix(space + 1);
  }
  const char* family = v6 ? "TCP6" : "TCP4";
  if (parts.size() != 4 || std::any_of(parts.begin(), parts.end(), [](auto p) { return p.empty(); })) {
    return invalid(1, std::string("v1 ") + family + " line is not \"source destination sport dport\" separated by single spaces");
  }
  auto source = v6 ? ipv6(parts[0]) : ipv4(parts[0]);
  if (!source) return invalid(1, std::string("v1 source address is not an ") + (v6 ? "IPv6" : "IPv4") + " address as " + family + " requires");
  auto destination = v6 ? ipv6(parts[1]) : ipv4(parts[1]);
  if (!destination) return invalid(1, std::string("v1 destination address is not an ") + (v6 ? "IPv6" : "IPv4") + " address as " + family + " requires");
  auto sport = decimal(parts[2], 65535);
  if (!sport) return invalid(1, "v1 source port is not a number in 0..65535 without leading zeroes");
  auto dport = decimal(parts[3], 65535);
  if (!dport) return invalid(1, "v1 destination port is not a number in 0..65535 without leading zeroes");
  ProxyParse p;
  p.status = Status::complete;
  p.version = 1;
  p.consumed = consumed;
  p.source = ProxyEndpoint{*source, static_cast<std::uint16_t>(*sport)};
  p.destination = ProxyEndpoint{*destination, static_cast<std::uint16_t>(*dport)};
  return p;
}

ProxyParse parse_v1(std::string_view received) {
  // Only the first 107 bytes can hold the line; look no further (spec §2.1).
  const auto window = received.substr(0, kProxyV1MaxLength);
  const auto lf = window.find('\n');
  const auto cr = window.find('\r');
  // The line ends at the first CRLF; a CR or LF alone is not a line end and not allowed inside.
  if (cr != std::string_view::npos && cr + 1 < window.size() && window[cr + 1] != '\n') {
    return invalid(1, "v1 line holds a CR not followed by LF");
  }
  if (lf != std::string_view::npos && (cr == std::string_view::npos || cr + 1 != lf)) {
    return invalid(1, "v1 line ends in a bare LF, not CRLF");
  }
  if (lf == std::string_view::npos) {
    std::size_t shortest = kV1ShortestUnknown;
    const auto rest = window.substr(kV1Signature.size());
    if (rest.starts_with("TCP4 ")) shortest = kV1ShortestTcp4;
    if (rest.starts_with("TCP6 ")) shortest = kV1ShortestTcp6;
    // One byte at a time once the line may end: a bare LF must be seen (and refused) at once,
    // and no byte after the CRLF may be taken.
    const std::size_t to_line_end = window.ends_with('\r') ? 1 : 2;
    if (window.size() + to_line_end > kProxyV1MaxLength) {
      return invalid(1, "no CRLF in the first " + std::to_string(kProxyV1MaxLength) + " bytes of the v1 line");
    }
    return need_more(1, shortest > window.size() ? shortest - window.size() : 1);
  }
  const auto line = window.substr(0, cr);  // without CRLF
  for (unsigned char c : line) {
    if (c < 0x20 || c > 0x7e) return invalid(1, "v1 line holds a byte that is not printable US-ASCII");
  }
  const auto body = line.substr(kV1Signature.size());
  const auto space = body.find(' ');
  const auto protocol = body.substr(0, space);
  if (protocol == "UNKNOWN") {
    // The spec: "the receiver must ignore anything presented before the CRLF is found".
    ProxyParse p;
    p.status = Status::complete;
    p.version = 1;
    p.consumed = lf + 1;
    return p;
  }
  if (protocol != "TCP4" && protocol != "TCP6") {
    return invalid(1, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
  }
  if (space == std::string_view::npos) return invalid(1, "v1 " + std::string(protocol) + " line has no addresses");
  return parse_v1_tcp(body.substr(space + 1), protocol == "TCP6", lf + 1);
}

std::uint16_t big_endian16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

ProxyParse parse_v2(std::string_view received) {
  if (received.size() < kProxyV2FixedLength) return need_more(2, kProxyV2FixedLength - received.size());
  const auto* b = reinterpret_cast<const unsigned char*>(received.data());
  const unsigned version = b[12] >> 4;
  const unsigned command = b[12] & 0x0f;
  const unsigned family = b[13] >> 4;
  const unsigned transport = b[13] & 0x0f;
  const std::size_t length = big_endian16(b + 14);
  if (version != 2) return invalid(2, "v2 signature with version " + std::to_string(version) + ", not 2");
  if (command != kV2CommandLocal && command != kV2CommandProxy) {
    return invalid(2, "v2 command " + std::to_string(command) + " is neither LOCAL (0) nor PROXY (1)");
  }
  if (family > kV2FamilyUnix || transport > kV2TransportDgram) {
    return invalid(2, "v2 address family/transport byte 0x" + std::string(1, "0123456789abcdef"[family]) +
                          std::string(1, "0123456789abcdef"[transport]) + " is not defined by the protocol");
  }
  if (length > kProxyV2MaxLength) {
    return invalid(2, "v2 address block of " + std::to_string(length) + " bytes exceeds the limit of " +
                          std::to_string(kProxyV2MaxLength));
  }
  const bool tcp = command == kV2CommandProxy && transport == kV2TransportStream;
  const bool tcp4 = tcp && family == kV2FamilyInet;
  const bool tcp6 = tcp && family == kV2FamilyInet6;
  if ((tcp4 && length < kV2Inet4Block) || (tcp6 && length < kV2Inet6Block)) {
    return invalid(2, "v2 address block of " + std::to_string(length) + " bytes is too short for TCP over " +
                          (tcp4 ? "IPv4" : "IPv6"));
  }
  const std::size_t total = kProxyV2FixedLength + length;
  if (received.size() < total) return need_more(2, total - received.size());

  ProxyParse p;
  p.status = Status::complete;
  p.version = 2;
  p.consumed = total;
  // LOCAL (a health check), UNSPEC, UNIX and UDP: the connection's own addresses stand. The
  // TLVs after the addresses are skipped: nothing here needs them.
  const unsigned char* a = b + kProxyV2FixedLength;
  if (tcp4) {
    boost::asio::ip::address_v4::bytes_type src{}, dst{};
    std::copy(a, a + 4, src.begin());
    std::copy(a + 4, a + 8, dst.begin());
    p.source = ProxyEndpoint{boost::asio::ip::address_v4(src), big_endian16(a + 8)};
    p.destination = ProxyEndpoint{boost::asio::ip::address_v4(dst), big_endian16(a + 10)};
  } else if (tcp6) {
    boost::asio::ip::address_v6::bytes_type src{}, dst{};
    std::copy(a, a + 16, src.begin());
    std::copy(a + 16, a + 32, dst.begin());
    p.source = ProxyEndpoint{boost::asio::ip::address_v6(src), big_endian16(a + 32)};
    p.destination = ProxyEndpoint{boost::asio::ip::address_v6(dst), big_endian16(a + 34)};
  }
  return p;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view received) {
  if (received.empty()) return need_more(0, kFirstRead);
  // The first byte tells the versions apart ('P' against CR); each signature is then checked
  // on as much of it as has arrived, so an SMTP client talking first is refused at once.
  if (received[0] == kV1Signature[0]) {
    const auto n = std::min(received.size(), kV1Signature.size());
    if (received.substr(0, n) != kV1Signature.substr(0, n)) return invalid(1, "not a PROXY protocol header");
    if (received.size() < kFirstRead) return need_more(1, kFirstRead - received.size());
    return parse_v1(received);
  }
  if (received[0] == kV2Signature[0]) {
    const auto n = std::min(received.size(), kV2Signature.size());
    if (received.substr(0, n) != kV2Signature.substr(0, n)) return invalid(2, "not a PROXY protocol header");
    return parse_v2(received);
  }
  return invalid(0, "not a PROXY protocol header");
}

}  // namespace mailhop::smtp
