// Dot-stuffing for sending DATA (RFC 5321 §4.5.2), incremental because content is streamed
// from the spool in chunks. Input is canonical content (CRLF line ends, no bare CR or LF).
#pragma once

#include <string>
#include <string_view>

namespace mailhop::smtp {

class DotStuffer {
 public:
  // Appends `chunk`, with a '.' added before every line that starts with '.', to `out`.
  void encode(std::string_view chunk, std::string& out);
  // Ends the data: CRLF if the content did not end with one, then ".\r\n".
  void finish(std::string& out);

 private:
  bool at_line_start_ = true;
  bool ends_with_crlf_ = true;  // true for empty content too
  char last_ = '\0';
};

// Whole-buffer helpers (tests, small messages).
std::string dot_stuff(std::string_view content);    // includes the final ".\r\n"

}  // namespace mailhop::smtp
