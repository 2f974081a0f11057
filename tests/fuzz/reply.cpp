// Fuzz target: the client's reply parser (smtp/reply.hpp). The input is what a next hop sends;
// it is cut into lines by a LineBuffer as the relay client does, and each line fed to a
// ReplyParser.
//
// Invariants: nothing crashes; a complete reply has a code in 200..599 and at least one line;
// Reply::enhanced() is a prefix of the first line; and formatting a parsed reply with
// format_multiline() and parsing it again gives the same reply (CR, LF and NUL in its text
// become spaces: a formatted reply is exactly the lines it claims to be).
#include <cstdint>
#include <string>

#include "check.hpp"
#include "mailhop/smtp/line_buffer.hpp"
#include "mailhop/smtp/reply.hpp"

using namespace mailhop::smtp;

namespace {

std::string sanitised(std::string s) {
  for (auto& c : s)
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  return s;
}

void check_round_trip(const Reply& reply) {
  auto wire = format_multiline(reply.code, reply.lines);
  FUZZ_CHECK(wire.ends_with("\r\n"));
  LineBuffer buffer(1 << 20);
  buffer.append(wire);
  ReplyParser parser;
  std::size_t n = 0;
  while (auto line = buffer.pop_line()) {
    ++n;
    auto status = parser.feed_line(line->text);
    FUZZ_CHECK(status != ReplyParser::Status::error);
    if (status == ReplyParser::Status::complete) {
      FUZZ_CHECK(n == reply.lines.size());
      auto again = parser.take();
      FUZZ_CHECK(again.code == reply.code);
      FUZZ_CHECK(again.lines.size() == reply.lines.size());
      for (std::size_t i = 0; i < again.lines.size(); ++i) {
        // The parser drops one CR before the line end; the formatter turned the others into spaces.
        auto expected = sanitised(reply.lines[i]);
        FUZZ_CHECK(again.lines[i] == expected);
      }
      FUZZ_CHECK(!buffer.pop_line());
      return;
    }
  }
  FUZZ_CHECK(false && "formatted reply never completed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  LineBuffer buffer(1000);
  buffer.append(input);
  ReplyParser parser;
  while (auto line = buffer.pop_line()) {
    auto status = parser.feed_line(line->text);
    if (status == ReplyParser::Status::error) {
      FUZZ_CHECK(!parser.error().empty());
      continue;
    }
    if (status != ReplyParser::Status::complete) continue;
    auto reply = parser.take();
    FUZZ_CHECK(reply.code >= 200 && reply.code <= 599);
    FUZZ_CHECK(!reply.lines.empty());
    FUZZ_CHECK(reply.lines.front().starts_with(reply.enhanced()));
    FUZZ_CHECK(reply.to_string().starts_with(std::to_string(reply.code)));
    FUZZ_CHECK(reply.positive() + reply.transient() + reply.permanent() == 1);
    check_round_trip(reply);
  }
  return 0;
}
