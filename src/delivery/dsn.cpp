// RFC 3464 delivery status notifications (see mailhop/delivery/dsn.hpp).
#include "mailhop/delivery/dsn.hpp"

#include <fmt/format.h>

#include "mailhop/smtp/address.hpp"
#include "mailhop/smtp/message_headers.hpp"

namespace mailhop::delivery {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// A header field folded at white space so lines stay under 78 characters where they can
// (RFC 5322 §2.2.3); a word longer than that stays whole.
std::string field(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ": ";
  std::size_t line_length = out.size();
  std::size_t pos = 0;
  bool first = true;
  while (pos < value.size()) {
    std::size_t space = value.find(' ', pos);
    std::string_view word = value.substr(pos, space == std::string_view::npos ? std::string_view::npos : space - pos);
    if (!first && line_length + 1 + word.size() > 76) {
      out += "\r\n ";
      line_length = 1;
    } else if (!first) {
      out += ' ';
      ++line_length;
    }
    out += word;
    line_length += word.size();
    first = false;
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  out += kCrlf;
  return out;
}

// Control characters (a CR or LF in a reply would break the report's structure) become spaces.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

// Text for a person, wrapped at white space under 78 characters; continuation lines indented.
std::string wrap(std::string_view text, std::string_view indent = "    ") {
  std::string out;
  std::size_t line_length = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t space = text.find(' ', pos);
    std::string_view word = text.substr(pos, space == std::string_view::npos ? std::string_view::npos : space - pos);
    if (line_length > 0 && line_length + 1 + word.size() > 76) {
      out += "\r\n";
      out += indent;
      line_length = indent.size();
    } else if (line_length > 0) {
      out += ' ';
      ++line_length;
    }
    out += word;
    line_length += word.size();
    if (space == std::string_view::npos) break;
    pos = space + 1;
  }
  out += kCrlf;
  return out;
}

}  // namespace

std::string header_section(std::string_view content) {
  std::size_t end = smtp::header_section_end(content, true).value_or(content.size());
  std::string out(content.substr(0, end));
  if (!out.empty() && !out.ends_with(kCrlf)) out += kCrlf;
  return out;
}

Dsn make_dsn(const DsnInput& in) {
  const spool::Envelope& orig = in.original;
  const std::string id = orig.id.str();
  const std::string boundary = fmt::format("=_{}/{}", id, in.hostname);

  bool eight_bit = smtp::has_non_ascii(in.original_headers) || smtp::has_non_ascii(orig.sender);
  for (const auto& r : in.failed) eight_bit = eight_bit || smtp::has_non_ascii(r.address) || smtp::has_non_ascii(r.reason);
  const std::string_view charset = eight_bit ? "utf-8" : "us-ascii";

  std::string c;
  c += fmt::format("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", in.hostname);
  c += fmt::format("To: <{}>\r\n", orig.sender);
  c += "Subject: Undelivered Mail Returned to Sender\r\n";
  c += fmt::format("Date: {}\r\n", util::rfc5322_date(in.now));
  c += fmt::format("Message-ID: <{}.dsn@{}>\r\n", id, in.hostname);
  c += "Auto-Submitted: auto-replied\r\n";  // RFC 3834 §5: no automatic reply to this
  c += "MIME-Version: 1.0\r\n";
  c += fmt::format("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{}\"\r\n", boundary);
  c += kCrlf;
  c += "This is a MIME-encapsulated message.\r\n\r\n";

  // 1. The explanation for a person.
  c += fmt::format("--{}\r\n", boundary);
  c += "Content-Description: Notification\r\n";
  c += fmt::format("Content-Type: text/plain; charset={}\r\n", charset);
  if (eight_bit) c += "Content-Transfer-Encoding: 8bit\r\n";
  c += kCrlf;
  c += fmt::format("This is the mail system at host {}.\r\n\r\n", in.hostname);
  c += "Your message could not be delivered to one or more recipients.\r\n";
  c += "It is attached below (headers only).\r\n\r\n";
  c += wrap(fmt::format("The message was received on {} with queue ID {}.", util::rfc5322_date(orig.arrival), id), "");
  c += kCrlf;
  for (const auto& r : in.failed) {
    if (!r.remote_mta.empty())
      c += wrap(fmt::format("<{}>: host {} said: {}", r.address, r.remote_mta, one_line(r.reason)));
    else
      c += wrap(fmt::format("<{}>: {}", r.address, one_line(r.reason)));
  }
  c += kCrlf;

  // 2. The machine-readable report (RFC 3464 §2.2, §2.3).
  c += fmt::format("--{}\r\n", boundary);
  c += "Content-Description: Delivery report\r\n";
  c += "Content-Type: message/delivery-status\r\n";
  if (eight_bit) c += "Content-Transfer-Encoding: 8bit\r\n";
  c += kCrlf;
  c += fmt::format("Reporting-MTA: dns; {}\r\n", in.hostname);
  c += fmt::format("X-Mailhop-Queue-ID: {}\r\n", id);
  c += field("Arrival-Date", util::rfc5322_date(orig.arrival));
  for (const auto& r : in.failed) {
    c += kCrlf;
    c += fmt::format("Final-Recipient: rfc822; {}\r\n", r.address);
    c += "Action: failed\r\n";
    c += fmt::format("Status: {}\r\n", r.status);
    if (!r.remote_mta.empty()) {
      c += fmt::format("Remote-MTA: dns; {}\r\n", r.remote_mta);
      c += field("Diagnostic-Code", "smtp; " + one_line(r.reason));
    }
  }
  c += kCrlf;

  // 3. The original header section.
  c += fmt::format("--{}\r\n", boundary);
  c += "Content-Description: Undelivered Message Headers\r\n";
  c += "Content-Type: text/rfc822-headers\r\n";
  if (eight_bit) c += "Content-Transfer-Encoding: 8bit\r\n";
  c += kCrlf;
  c += in.original_headers;
  if (!in.original_headers.empty() && !in.original_headers.ends_with(kCrlf)) c += kCrlf;
  c += kCrlf;
  c += fmt::format("--{}--\r\n", boundary);

  Dsn dsn;
  dsn.envelope.sender = "";
  dsn.envelope.recipients.push_back(spool::Recipient{orig.sender, spool::RecipientState::pending, ""});
  dsn.envelope.arrival = in.now;
  dsn.envelope.next_attempt = in.now;
  dsn.envelope.size = c.size();
  dsn.envelope.eight_bit = eight_bit;
  dsn.envelope.smtputf8 = smtp::has_non_ascii(orig.sender);
  dsn.envelope.client_host = in.hostname;
  dsn.envelope.client_ip = "127.0.0.1";
  dsn.content = std::move(c);
  return dsn;
}

}  // namespace mailhop::delivery
