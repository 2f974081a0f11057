// Fuzz target: the PROXY protocol header parser (smtp/proxy_protocol.hpp). The input is what a
// load balancer — or anyone reaching a proxy_protocol listener — sends first.
//
// Invariants: nothing crashes; every answer is within its bounds (a complete header is at most
// 107 bytes for v1 and kProxyMaxHeader for v2, a request for more never reaches past those);
// reading exactly `need` bytes at a time, as the server does, ends where parsing the whole
// input ends, with the same addresses, and never reads past the header; a complete header
// parses the same when nothing follows it, and one byte less of it is never complete.
#include <cstdint>
#include <string_view>

#include "check.hpp"
#include "mailhop/smtp/proxy_protocol.hpp"

using namespace mailhop::smtp;
using Status = ProxyParse::Status;

namespace {

void check_bounds(const ProxyParse& p, std::size_t size) {
  switch (p.status) {
    case Status::need_more:
      FUZZ_CHECK(p.need > 0);
      FUZZ_CHECK(size + p.need <= kProxyMaxHeader);
      if (p.version == 1) FUZZ_CHECK(size + p.need <= kProxyV1MaxLength);
      break;
    case Status::complete:
      FUZZ_CHECK(p.consumed > 0 && p.consumed <= size);
      FUZZ_CHECK(p.version == 1 || p.version == 2);
      FUZZ_CHECK(p.consumed <= (p.version == 1 ? kProxyV1MaxLength : kProxyMaxHeader));
      FUZZ_CHECK(p.source.has_value() == p.destination.has_value());
      if (p.source) FUZZ_CHECK(p.source->address.is_v4() == p.destination->address.is_v4());
      FUZZ_CHECK(p.error.empty());
      break;
    case Status::invalid:
      FUZZ_CHECK(!p.error.empty());
      break;
  }
}

bool same(const ProxyParse& a, const ProxyParse& b) {
  if (a.status != b.status || a.consumed != b.consumed || a.version != b.version) return false;
  if (a.source.has_value() != b.source.has_value()) return false;
  if (a.source && (a.source->address != b.source->address || a.source->port != b.source->port ||
                   a.destination->address != b.destination->address || a.destination->port != b.destination->port)) {
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto whole = parse_proxy_header(input);
  check_bounds(whole, size);

  // As the server reads: exactly `need` bytes each time, until the input runs out.
  std::size_t have = 0;
  ProxyParse step;
  for (;;) {
    step = parse_proxy_header(input.substr(0, have));
    check_bounds(step, have);
    if (step.status != Status::need_more || have + step.need > size) break;
    have += step.need;
  }
  if (step.status == Status::complete) {
    FUZZ_CHECK(step.consumed == have);  // not one byte read past the header
    FUZZ_CHECK(same(step, whole));
  } else if (step.status == Status::invalid) {
    FUZZ_CHECK(whole.status == Status::invalid);
  } else {
    FUZZ_CHECK(whole.status != Status::complete);
  }

  if (whole.status == Status::complete) {
    FUZZ_CHECK(same(parse_proxy_header(input.substr(0, whole.consumed)), whole));
    FUZZ_CHECK(parse_proxy_header(input.substr(0, whole.consumed - 1)).status == Status::need_more);
  }
  return 0;
}
