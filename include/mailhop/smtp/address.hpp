// Mailbox addresses (RFC 5321 §4.1.2, RFC 6531 for UTF-8): checks only, no normalisation.
#pragma once

#include <string_view>

namespace mailhop::smtp {

// local-part@domain, where local-part is a dot-string or a quoted string and domain a
// dot-separated name or an address literal ([192.0.2.1], [IPv6:…]). UTF-8 is allowed
// (SMTPUTF8); control characters, spaces outside quotes and angle brackets are not.
bool is_valid_mailbox(std::string_view address);

// true when the text has a byte >= 0x80 (the message or address needs 8BITMIME / SMTPUTF8).
bool has_non_ascii(std::string_view text);

// The domain part (after the last '@'), or "" when there is none.
std::string_view domain_of(std::string_view address);

}  // namespace mailhop::smtp
