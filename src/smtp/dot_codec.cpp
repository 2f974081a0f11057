// Dot-stuffing for the sending side (RFC 5321 §4.5.2), streamed chunk by chunk.
#include "mailhop/smtp/dot_codec.hpp"

namespace mailhop::smtp {

void DotStuffer::encode(std::string_view chunk, std::string& out) {
  std::size_t i = 0;
  out.reserve(out.size() + chunk.size() + 8);
  while (i < chunk.size()) {
    if (pending_cr_) {
      pending_cr_ = false;
      out += "\r\n";  // CRLF, or a bare CR sent as a line end (never as a bare CR)
      at_line_start_ = true;
      if (chunk[i] == '\n') {
        ++i;
        continue;
      }
    }
    if (at_line_start_ && chunk[i] == '.') out += '.';
    auto j = chunk.find_first_of("\r\n", i);
    if (j == std::string_view::npos) j = chunk.size();
    if (j > i) {
      out.append(chunk.substr(i, j - i));
      at_line_start_ = false;
    }
    if (j == chunk.size()) break;
    if (chunk[j] == '\r') {
      pending_cr_ = true;
    } else {  // a bare LF
      out += "\r\n";
      at_line_start_ = true;
    }
    i = j + 1;
  }
}

void DotStuffer::finish(std::string& out) {
  if (pending_cr_ || !at_line_start_) out += "\r\n";
  out += ".\r\n";
  pending_cr_ = false;
  at_line_start_ = true;
}

std::string dot_stuff(std::string_view content) {
  std::string out;
  DotStuffer stuffer;
  stuffer.encode(content, out);
  stuffer.finish(out);
  return out;
}

}  // namespace mailhop::smtp
