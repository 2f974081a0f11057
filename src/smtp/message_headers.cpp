// The header section of a message (RFC 5322 §2.2, §3.6): where it ends and which fields it
// has, so the server can add Date: and Message-ID: when a local submission lacks them.
//
// SECURITY: content is untrusted; this only reads it. Lines end in CRLF in canonical content;
// a bare LF is taken as a line end too so nothing here depends on that guarantee.
#include "mailhop/smtp/message_headers.hpp"

#include "ascii.hpp"

namespace mailhop::smtp {
namespace {

// field-name = 1*ftext (printable ASCII except ':'), then ':' — optionally after white space,
// the obsolete form "Subject : x" (RFC 5322 §4.5.3). Returns the name, or "" when the line is
// not a header field.
std::string_view field_name(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] >= 33 && line[i] <= 126 && line[i] != ':') ++i;
  if (i == 0) return {};
  std::size_t name_end = i;
  while (i < line.size() && ascii::is_wsp(line[i])) ++i;
  if (i >= line.size() || line[i] != ':') return {};
  return line.substr(0, name_end);
}

// Calls `f(offset, line, complete)` for each line; stops when f returns false.
template <typename F>
void for_each_line(std::string_view content, F&& f) {
  std::size_t pos = 0;
  while (pos < content.size()) {
    auto lf = content.find('\n', pos);
    bool complete = lf != std::string_view::npos;
    auto end = complete ? lf : content.size();
    auto line = content.substr(pos, end - pos);
    if (complete && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!f(pos, line, complete)) return;
    pos = complete ? lf + 1 : content.size();
  }
}

}  // namespace

std::optional<std::size_t> header_section_end(std::string_view content, bool complete) {
  std::optional<std::size_t> result;
  bool first = true;
  bool reached_end = true;
  for_each_line(content, [&](std::size_t offset, std::string_view line, bool line_complete) {
    if (!line_complete && !complete) {  // may still grow into a header field
      reached_end = false;
      return false;
    }
    bool continuation = !line.empty() && ascii::is_wsp(line.front());
    bool header = continuation ? !first : !field_name(line).empty();
    if (!header) {
      result = offset;
      return false;
    }
    first = false;
    return true;
  });
  if (result) return result;
  if (complete && reached_end) return content.size();
  return std::nullopt;
}

bool has_header_field(std::string_view header_section, std::string_view name) {
  bool found = false;
  for_each_line(header_section, [&](std::size_t, std::string_view line, bool) {
    if (!line.empty() && ascii::is_wsp(line.front())) return true;
    auto n = field_name(line);
    if (!n.empty() && ascii::iequals(n, name)) found = true;
    return !found;
  });
  return found;
}

}  // namespace mailhop::smtp
