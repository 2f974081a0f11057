// LineBuffer: CRLF and bare LF, partial lines, the length bound, pending()/consume(), clear().
#include <catch2/catch.hpp>

#include <string>

#include "mailhop/smtp/line_buffer.hpp"

using namespace mailhop::smtp;

TEST_CASE("lines end in CRLF or bare LF", "[line]") {
  LineBuffer b;
  b.append("EHLO a\r\nMAIL FROM:<x@y>\nRCPT TO:<z@w>\r\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "EHLO a");
  CHECK_FALSE(l->too_long);
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "MAIL FROM:<x@y>");
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "RCPT TO:<z@w>");
  CHECK_FALSE(b.pop_line());
  CHECK(b.pending().empty());
}

TEST_CASE("a line arriving in pieces", "[line]") {
  LineBuffer b;
  const std::string input = "NOOP\r\nQUIT\r\n";
  std::vector<std::string> lines;
  for (char c : input) {
    b.append(std::string_view(&c, 1));
    while (auto l = b.pop_line()) lines.push_back(l->text);
  }
  CHECK(lines == std::vector<std::string>{"NOOP", "QUIT"});
  b.append("DA");
  CHECK_FALSE(b.pop_line());
  CHECK(b.pending() == "DA");
  b.append("TA\r");
  CHECK_FALSE(b.pop_line());
  b.append("\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "DATA");
}

TEST_CASE("empty lines and a CR that is not before LF", "[line]") {
  LineBuffer b;
  b.append("\r\n\na\rb\r\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text.empty());
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text.empty());
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "a\rb");  // only the CR right before the LF belongs to the line end
}

TEST_CASE("over-long lines are dropped and reported once", "[line][security]") {
  LineBuffer b(10);
  b.append("0123456789\r\n");  // exactly at the bound
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK_FALSE(l->too_long);
  CHECK(l->text == "0123456789");

  b.append("0123456789A\r\nNOOP\r\n");
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->too_long);
  CHECK(l->text.empty());
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "NOOP");

  // A long line arriving in many pieces is not held: the buffer stays small.
  for (int i = 0; i < 1000; ++i) {
    b.append("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    CHECK_FALSE(b.pop_line());
    CHECK(b.pending().size() <= 100);
  }
  b.append("tail\nQUIT\n");
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->too_long);
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "QUIT");
  CHECK_FALSE(l->too_long);
}

TEST_CASE("a line at the bound split before its LF is not too long", "[line]") {
  LineBuffer b(10);
  b.append("0123456789\r");
  CHECK_FALSE(b.pop_line());
  b.append("\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK_FALSE(l->too_long);
  CHECK(l->text == "0123456789");
}

TEST_CASE("pending() and consume() hand pipelined bytes to the DATA reader", "[line]") {
  LineBuffer b;
  b.append("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "DATA");
  CHECK(b.pending() == "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  b.consume(23);
  CHECK(b.pending() == "QUIT\r\n");
  b.consume(1000);  // more than there is: everything
  CHECK(b.pending().empty());
  b.append("NOOP\n");
  l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "NOOP");
}

TEST_CASE("clear() drops everything buffered", "[line][security]") {
  LineBuffer b(10);
  b.append("STARTTLS\r\nMAIL FROM:<injected@x>\r\n");
  auto l = b.pop_line();
  REQUIRE(l);
  CHECK(l->text == "STARTTLS");
  b.clear();
  CHECK(b.pending().empty());
  CHECK_FALSE(b.pop_line());

  b.append("a very long line without end");  // now discarding
  CHECK_FALSE(b.pop_line());
  b.clear();  // also ends the discarding
  b.append("EHLO x\r\n");
  l = b.pop_line();
  REQUIRE(l);
  CHECK_FALSE(l->too_long);
  CHECK(l->text == "EHLO x");
}

TEST_CASE("many lines through one buffer", "[line]") {
  LineBuffer b(64);
  std::string all;
  for (int i = 0; i < 5000; ++i) all += "line " + std::to_string(i) + (i % 2 ? "\r\n" : "\n");
  int n = 0;
  for (std::size_t pos = 0; pos < all.size(); pos += 37) {
    b.append(std::string_view(all).substr(pos, 37));
    while (auto l = b.pop_line()) {
      CHECK(l->text == "line " + std::to_string(n));
      ++n;
    }
  }
  CHECK(n == 5000);
}
