// What the server adds to a message it accepts: the Received: trace field first (RFC 5321
// §4.4), and Date: and Message-ID: at the end of the header section when the submission has
// none (RFC 5322 §3.6 requires Date:, and Postfix adds both for local mail).
//
// SECURITY: the HELO name and the addresses come from the client. The session admits only
// printable ASCII in the HELO name and syntactically valid mailboxes, so nothing here can carry
// a line end into the stored message; received_header() checks it once more.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "mailhop/util/time.hpp"

namespace mailhop::server {

struct TraceInfo {
  std::string helo;          // as the client named itself; "" when it never did
  std::string client_ip;     // "192.0.2.1", "2001:db8::1"
  std::string hostname;      // ours
  std::string protocol;      // "SMTP", "ESMTP", "ESMTPSA", "UTF8SMTPS"… (RFC 3848, RFC 6531 §3.7.3)
  std::string tls;           // "TLSv1.3 with cipher … (256/256 bits)"; "" without TLS
  std::string auth_user;     // the AUTH identity; "" when the client did not authenticate
  std::string queue_id;
  std::optional<std::string> recipient;  // named only when the message has exactly one
  util::SystemTime when{};
};

// "Received: from helo (ip [ip])\r\n\tby host (mailhop) with ESMTP id ID\r\n\tfor <rcpt>; date\r\n",
// with TLS "\t(using TLSv1.3 with cipher …)\r\n" and with AUTH "\t(Authenticated sender: alice)\r\n"
// after the first line, as Postfix writes them.
std::string received_header(const TraceInfo& info);

// The protocol name for the WITH clause (RFC 3848, RFC 6531 §3.7.3): SMTP after HELO; ESMTP,
// or UTF8SMTP for an SMTPUTF8 transaction, with "S" for TLS and "A" for AUTH appended. A HELO
// client that used STARTTLS or AUTH used ESMTP extensions, so it counts as ESMTP.
std::string trace_protocol(bool esmtp, bool smtputf8, bool tls, bool authenticated);

// Streams canonical content through, holding the beginning until the end of the header section
// is known (or `bound` bytes, then cut at the last line end), and inserts the missing fields
// there. Memory is bounded by `bound` plus one chunk.
class HeaderCompleter {
 public:
  // `date` and `message_id` are whole field lines with CRLF: "Date: …\r\n".
  HeaderCompleter(std::string date, std::string message_id, std::size_t bound = 64 * 1024);

  // Appends what can be passed on to `out`.
  void feed(std::string_view content, std::string& out);
  // The content ended: appends what is still held.
  void finish(std::string& out);

 private:
  void release(std::size_t header_end, std::string& out);

  std::string date_;
  std::string message_id_;
  std::size_t bound_;
  std::string held_;
  bool passed_ = false;  // the header section was completed; the rest flows straight through
};

}  // namespace mailhop::server
