// Bounces: RFC 3464 delivery status notifications, composed in memory (pure, no I/O).
//
// multipart/report; report-type=delivery-status (RFC 6522) with three parts: a human-readable
// explanation, the message/delivery-status fields (Reporting-MTA, Arrival-Date, then per
// recipient Final-Recipient, Action: failed, Status, Remote-MTA and Diagnostic-Code when the
// next hop said no), and the original message's header section as text/rfc822-headers.
// It comes from MAILER-DAEMON@<hostname> and goes out with the null envelope sender, so that a
// bounce can never cause another bounce (RFC 5321 §4.5.5).
#pragma once

#include <string>
#include <vector>

#include "mailhop/spool/envelope.hpp"
#include "mailhop/util/time.hpp"

namespace mailhop::delivery {

struct FailedRecipient {
  std::string address;
  std::string status;      // enhanced status code, "5.1.1"
  std::string reason;      // the next hop's reply or the local reason, as logged
  std::string remote_mta;  // the next hop's name when `reason` is its reply, else ""
};

struct DsnInput {
  std::string hostname;         // this MTA: Reporting-MTA and MAILER-DAEMON@hostname
  spool::Envelope original;     // the message that failed (its sender gets the DSN)
  std::vector<FailedRecipient> failed;
  std::string original_headers; // the original header section, CRLF line ends
  util::SystemTime now{};
};

struct Dsn {
  spool::Envelope envelope;  // null sender, one recipient (the original sender), due now
  std::string content;       // canonical: CRLF line ends
};

// Precondition: original.sender is not empty (null-sender messages never bounce).
Dsn make_dsn(const DsnInput& input);

// The header section of `content` (up to and including the empty line's CRLF is left out:
// header fields only, each line ending in CRLF). For text/rfc822-headers.
std::string header_section(std::string_view content);

}  // namespace mailhop::delivery
