// Dot-stuffing for sending DATA (RFC 5321 §4.5.2), incremental because content is streamed
// from the spool in chunks. Input is canonical content (CRLF line ends, no bare CR or LF).
//
// SECURITY: as a second line of defence against SMTP smuggling, a bare CR or bare LF that does
// reach the encoder anyway is sent as CRLF (and a dot after it is stuffed), so the output never
// holds a bare CR or LF, nor a line with only a dot before the final one.
#pragma once

#include <string>
#include <string_view>

namespace mailhop::smtp {

class DotStuffer {
 public:
  // Appends `chunk`, with a '.' added before every line that starts with '.', to `out`.
  void encode(std::string_view chunk, std::string& out);
  // Ends the data: CRLF if the content did not end with one, then ".\r\n". The encoder is then
  // ready for the next message.
  void finish(std::string& out);

 private:
  bool at_line_start_ = true;  // true for empty content too
  bool pending_cr_ = false;    // the previous chunk ended in CR
};

// Whole-buffer helpers (tests, small messages).
std::string dot_stuff(std::string_view content);    // includes the final ".\r\n"

}  // namespace mailhop::smtp
