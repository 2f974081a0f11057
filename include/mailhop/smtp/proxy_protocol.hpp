// The HAProxy PROXY protocol header (versions 1 and 2, haproxy's doc/proxy-protocol.txt), which
// a TCP load balancer sends before the client's first byte to say who the client really is.
// A pure parser: the server reads the bytes and asks this parser how many more it needs.
//
// SECURITY: the header is only believed from trusted_proxies (the server's decision, not this
// parser's). Parsing is strict (spec §2.1: "any sequence which does not exactly match the
// protocol must be discarded"), bounded (107 bytes for v1, kMaxV2Length for v2's address block)
// and never asks for a byte past the header's end, so nothing of the SMTP or TLS stream that
// follows is read by the header's reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace mailhop::smtp {

// Spec §2.1: the longest v1 line, "PROXY UNKNOWN <IPv6> <IPv6> 65535 65535\r\n", CRLF included.
inline constexpr std::size_t kProxyV1MaxLength = 107;
// The fixed part of a v2 header: signature, version/command, family, length.
inline constexpr std::size_t kProxyV2FixedLength = 16;
// The largest v2 address block (addresses + TLVs) accepted. The spec allows 65535; real
// balancers send at most a few hundred bytes (AWS, GCP and Azure TLVs, HAProxy's SSL TLVs).
inline constexpr std::size_t kProxyV2MaxLength = 2048;
inline constexpr std::size_t kProxyMaxHeader = kProxyV2FixedLength + kProxyV2MaxLength;

struct ProxyEndpoint {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
};

struct ProxyParse {
  enum class Status { need_more, complete, invalid };
  Status status = Status::need_more;
  // need_more: read at least this many more bytes before asking again. Reading exactly this
  // many never reads past the header's end.
  std::size_t need = 0;
  // complete: the header's length in bytes (what follows belongs to SMTP or TLS).
  std::size_t consumed = 0;
  int version = 0;  // 1 or 2, once the signature says which
  // complete: the real client and the address it connected to. Both unset for a v1 UNKNOWN, a
  // v2 LOCAL (a balancer's health check) and a v2 family other than TCP over IPv4/IPv6: then
  // the connection's own addresses stand.
  std::optional<ProxyEndpoint> source;
  std::optional<ProxyEndpoint> destination;
  std::string error;  // invalid: why, in words for the log
};

// Parses the bytes received so far from the start of the connection. Bytes after a complete
// header are ignored (consumed says where the header ends).
ProxyParse parse_proxy_header(std::string_view received);

}  // namespace mailhop::smtp
