// ESMTP service extensions a server advertises in its EHLO reply (RFC 5321 §4.1.1.1), as the
// relay client needs to know them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mailhop/smtp/reply.hpp"

namespace mailhop::smtp {

struct Capabilities {
  bool pipelining = false;           // RFC 2920
  bool starttls = false;             // RFC 3207
  bool eight_bit_mime = false;       // RFC 6152
  bool smtputf8 = false;             // RFC 6531
  bool enhanced_status_codes = false;// RFC 2034
  bool size = false;                 // RFC 1870
  std::uint64_t max_size = 0;        // SIZE's argument; 0 when not given or unlimited
  std::vector<std::string> auth;     // AUTH mechanisms, upper-cased (RFC 4954)

  bool has_auth(std::string_view mechanism) const;
};

// From a 250 reply to EHLO: the first line is the greeting, each further line a keyword.
Capabilities parse_ehlo_reply(const Reply& reply);

}  // namespace mailhop::smtp
