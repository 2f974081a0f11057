// SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463): formatting for the
// server, line-by-line parsing for the client.
//
// SECURITY: replies parsed here come from a next hop mailhop does not control; a reply is bounded
// in lines (the caller bounds each line). Text formatted here may quote client input, so CR and
// LF are replaced: one formatted reply is always exactly the lines it claims to be.
#include "mailhop/smtp/reply.hpp"

#include "ascii.hpp"

namespace mailhop::smtp {
namespace {

constexpr std::size_t kMaxReplyLines = 1000;

void append_sanitised(std::string& out, std::string_view text) {
  for (char c : text) out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
}

// "2.0.0", "5.1.1", "4.7.0": class.subject.detail, subject and detail 1-3 digits (RFC 3463 §2).
std::size_t enhanced_length(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (i < s.size() && ascii::is_digit(s[i]) && digits < 4) ++i, ++digits;
    if (digits == 0 || digits > 3) return 0;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return 0;
      ++i;
    }
  }
  if (i < s.size() && !ascii::is_wsp(s[i])) return 0;
  return i;
}

}  // namespace

std::string Reply::enhanced() const {
  if (lines.empty()) return {};
  auto n = enhanced_length(lines.front());
  return n ? lines.front().substr(0, n) : std::string{};
}

std::string Reply::to_string() const {
  std::string out = std::to_string(code);
  for (const auto& l : lines) {
    if (l.empty()) continue;
    out += ' ';
    out += l;
  }
  return out;
}

std::string format_reply(int code, std::string_view enhanced, std::string_view text) {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) {
    out += ' ';
    append_sanitised(out, enhanced);
  }
  if (!text.empty()) {
    out += ' ';
    append_sanitised(out, text);
  }
  out += "\r\n";
  return out;
}

std::string format_multiline(int code, const std::vector<std::string>& lines) {
  std::string out;
  const std::string num = std::to_string(code);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += num;
    out += (i + 1 == lines.size()) ? ' ' : '-';
    append_sanitised(out, lines[i]);
    out += "\r\n";
  }
  if (lines.empty()) out = num + "\r\n";  // a caller's mistake, still a valid reply
  return out;
}

ReplyParser::Status ReplyParser::feed_line(std::string_view line) {
  auto bad = [&](std::string_view why) {
    error_ = "bad reply line: ";
    error_ += why;
    error_ += ": \"";
    append_sanitised(error_, line.substr(0, 80));
    error_ += '"';
    current_ = Reply{};
    return Status::error;
  };
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 3 || !ascii::is_digit(line[0]) || !ascii::is_digit(line[1]) || !ascii::is_digit(line[2]))
    return bad("no reply code");
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (code < 200 || code > 599) return bad("reply code out of range");
  bool last = true;
  if (line.size() > 3) {
    if (line[3] == '-') last = false;
    else if (line[3] != ' ') return bad("no space or hyphen after the code");
  }
  if (!current_.lines.empty() && code != current_.code) return bad("reply code changed within a reply");
  if (current_.lines.size() >= kMaxReplyLines) return bad("too many lines in one reply");
  current_.code = code;
  current_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
  return last ? Status::complete : Status::incomplete;
}

Reply ReplyParser::take() {
  Reply r = std::move(current_);
  current_ = Reply{};
  return r;
}

}  // namespace mailhop::smtp
