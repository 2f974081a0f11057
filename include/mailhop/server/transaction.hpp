// One mail transaction (RFC 5321 §3.3): from MAIL to the reply after the final dot. Kept apart
// from the session state (HELO name, client, counters), which outlives it; RSET, HELO/EHLO and
// the end of DATA drop it whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mailhop::server {

struct Transaction {
  std::string sender;                    // "" for the null sender <>
  std::vector<std::string> recipients;   // accepted ones, in order, without duplicates
  unsigned recipients_refused = 0;       // RCPTs answered with an error
  std::optional<std::uint64_t> declared_size;  // SIZE= (RFC 1870)
  bool body_8bitmime = false;            // BODY=8BITMIME (RFC 6152)
  bool smtputf8 = false;                 // SMTPUTF8 (RFC 6531)
};

}  // namespace mailhop::server
