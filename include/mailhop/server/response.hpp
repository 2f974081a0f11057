// One SMTP reply as the server composes it: code, enhanced status code (RFC 3463) and words a
// person can act on. Checks return one of these; the session formats and sends it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mailhop::server {

struct Response {
  Response() = default;
  Response(int code_, std::string enhanced_, std::string text_, std::vector<std::string> more_ = {})
      : code(code_), enhanced(std::move(enhanced_)), text(std::move(text_)), more(std::move(more_)) {}

  int code = 0;
  std::string enhanced;            // "5.7.1"; empty for the greeting and 354
  std::string text;                // "Relay access denied"
  std::vector<std::string> more;   // further lines of a multi-line reply (EHLO, HELP), without codes

  bool is_error() const { return code >= 400; }
  // The reply as sent, CRLF line ends. Multi-line replies repeat the enhanced code on each line
  // (RFC 2034 §4), except EHLO's keyword lines, which carry none (callers leave `enhanced` empty).
  std::string wire() const;
};

}  // namespace mailhop::server
