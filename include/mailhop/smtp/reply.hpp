// SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034): formatting
// for the server, incremental parsing for the client.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailhop::smtp {

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // text after "NNN-" / "NNN ", one entry per line

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "5.1.1" when the first line starts with an enhanced status code, else "".
  std::string enhanced() const;
  // All lines joined with a space, e.g. for logs and DSNs: "550 5.1.1 No such user".
  std::string to_string() const;
};

// One reply line with CRLF: format_reply(250, "2.0.0", "Ok") == "250 2.0.0 Ok\r\n".
// An empty `enhanced` leaves the code out.
std::string format_reply(int code, std::string_view enhanced, std::string_view text);
// A multi-line reply: "250-first\r\n250-second\r\n250 last\r\n". `lines` must not be empty.
std::string format_multiline(int code, const std::vector<std::string>& lines);

// Builds a Reply from lines read off the wire (each without its line end).
class ReplyParser {
 public:
  enum class Status { incomplete, complete, error };
  Status feed_line(std::string_view line);
  // The finished reply; resets the parser for the next one.
  Reply take();
  // Why the last feed_line() returned error ("bad reply line: …").
  const std::string& error() const { return error_; }

 private:
  Reply current_;
  std::string error_;
};

}  // namespace mailhop::smtp
