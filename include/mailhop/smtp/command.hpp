// SMTP commands as the server receives them (RFC 5321 §4.1): parsing only, no I/O.
//
// SECURITY: input is untrusted bytes off the network. Nothing here allocates more than the
// line it is given; the caller bounds the line length (see line_buffer.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailhop::smtp {

enum class Verb {
  helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, starttls, auth,
  http,     // "GET / HTTP/1.1", "POST …", "CONNECT …": a cross-protocol request, never executed
  unknown,
};

struct Command {
  Verb verb = Verb::unknown;
  std::string name;      // the verb as sent, upper-cased ("MAIL"), for messages and logs
  std::string argument;  // everything after the verb and one or more spaces, trailing white space cut
};

// `line` is one command line without its line end. Verbs match in any letter case; white space
// (SP, HTAB) around the line is ignored. Verb::http: the line starts with GET, POST, HEAD, PUT,
// CONNECT, OPTIONS or DELETE followed by a space, or ends in " HTTP/1.x" (any case).
Command parse_command(std::string_view line);

// The argument of MAIL ("FROM:<a@b> SIZE=10") or RCPT ("TO:<a@b>"), parsed leniently as
// Postfix does by default: the keyword in any case, spaces after the colon, an address
// without angle brackets, trailing spaces. A source route (<@a,@b:user@c>) is accepted and
// dropped (RFC 5321 §4.1.1.3). The address passes is_valid_mailbox() (or is the null path, for
// MAIL only). Parameter syntax is checked (RFC 5321 §4.1.2), and the values of the ones mailhop
// knows: SIZE= digits, BODY=7BIT|8BITMIME (any case), SMTPUTF8 without a value. Others are
// returned as they are, for the session to accept or refuse (555 5.5.4).
struct PathArgument {
  std::string address;  // without angle brackets; "" for the null path <>
  // ESMTP parameters, keyword upper-cased, value as sent ("" when it has none): SIZE=123, BODY=8BITMIME, SMTPUTF8.
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* param(std::string_view keyword) const;  // nullptr when absent
};

struct PathParse {
  std::optional<PathArgument> path;  // set on success
  std::string error;                 // on failure: words for a 501 5.5.4 reply ("Syntax: MAIL FROM:<address>")
};

PathParse parse_mail_argument(std::string_view argument);  // expects "FROM:…"
PathParse parse_rcpt_argument(std::string_view argument);  // expects "TO:…"

}  // namespace mailhop::smtp
