// The Received: field and the completion of the header section (Date:, Message-ID:).
#include "mailhop/server/trace.hpp"

#include "mailhop/smtp/message_headers.hpp"

namespace mailhop::server {
namespace {

// Defence in depth: a byte that could end or fold the field never reaches the message.
std::string printable(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f) c = '?';
  }
  return out;
}

// Inside a comment: spaces stay, and nothing can end the line or close the comment early.
// `nested`: our own text, whose parentheses are balanced (RFC 5322 §3.2.2 allows nested comments).
std::string comment_text(std::string_view text, bool nested = false) {
  std::string out(text);
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\' || (!nested && (c == '(' || c == ')'))) c = '?';
  }
  return out;
}

}  // namespace

std::string trace_protocol(bool esmtp, bool smtputf8, bool tls, bool authenticated) {
  if (!esmtp && !tls && !authenticated) return "SMTP";
  std::string name = smtputf8 ? "UTF8SMTP" : "ESMTP";
  if (tls) name += 'S';
  if (authenticated) name += 'A';
  return name;
}

std::string received_header(const TraceInfo& info) {
  // RFC 5321 §4.4: From-domain, TCP-info as "(name [address-literal])", By-domain, With
  // (the protocol, RFC 3848), ID, For, then "; " and the date. No DNS lookups here, so the
  // name in TCP-info is the address itself.
  const bool v6 = info.client_ip.find(':') != std::string::npos;
  std::string out = "Received: from ";
  out += info.helo.empty() ? std::string("unknown") : printable(info.helo);
  out += " (" + printable(info.client_ip) + " [" + (v6 ? "IPv6:" : "") + printable(info.client_ip) + "])\r\n";
  // Comments (RFC 5322 §3.2.2) in the From part, where Postfix puts them.
  if (!info.tls.empty()) out += "\t(using " + comment_text(info.tls, true) + ")\r\n";
  if (!info.auth_user.empty()) out += "\t(Authenticated sender: " + comment_text(info.auth_user) + ")\r\n";
  out += "\tby " + printable(info.hostname) + " (mailhop) with " + printable(info.protocol) + " id " +
         printable(info.queue_id);
  if (info.recipient) {
    out += "\r\n\tfor <" + printable(*info.recipient) + ">; ";
  } else {
    out += ";\r\n\t";
  }
  out += util::rfc5322_date(info.when);
  out += "\r\n";
  return out;
}

HeaderCompleter::HeaderCompleter(std::string date, std::string message_id, std::size_t bound)
    : date_(std::move(date)), message_id_(std::move(message_id)), bound_(bound) {}

void HeaderCompleter::feed(std::string_view content, std::string& out) {
  if (passed_) {
    out.append(content);
    return;
  }
  held_.append(content);
  if (auto end = smtp::header_section_end(held_)) {
    release(*end, out);
  } else if (held_.size() >= bound_) {
    // A header section longer than the bound: complete what we have, at a line end, so the
    // inserted fields never split a line.
    auto last = held_.rfind("\r\n");
    std::size_t cut = last == std::string::npos ? 0 : last + 2;
    release(smtp::header_section_end(std::string_view(held_).substr(0, cut), true).value_or(cut), out);
  }
}

void HeaderCompleter::finish(std::string& out) {
  if (passed_) return;
  release(smtp::header_section_end(held_, true).value_or(held_.size()), out);
}

void HeaderCompleter::release(std::size_t header_end, std::string& out) {
  std::string_view held(held_);
  auto header = held.substr(0, header_end);
  out.append(header);
  if (!smtp::has_header_field(header, "Date")) out.append(date_);
  if (!smtp::has_header_field(header, "Message-ID")) out.append(message_id_);
  out.append(held.substr(header_end));
  held_.clear();
  held_.shrink_to_fit();
  passed_ = true;
}

}  // namespace mailhop::server
