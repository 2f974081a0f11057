// DataReader: end of data, unstuffing, line ends, bare CR, size limit, 8-bit detection, and the
// published SMTP smuggling end-of-data variants, fed whole, byte by byte and split at every
// position.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mailhop/smtp/data_reader.hpp"

using namespace mailhop::smtp;

namespace {

struct Result {
  std::string out;
  std::size_t consumed = 0;
  bool done = false, bare_cr = false, too_big = false, eight_bit = false;
  std::uint64_t size = 0;

  bool operator==(const Result&) const = default;
};

// Feeds `input` cut at the given offsets (ascending); stops feeding once the reader is done.
Result feed_split(std::string_view input, const std::vector<std::size_t>& cuts, std::uint64_t max = 1 << 20) {
  DataReader reader(max);
  Result r;
  std::size_t from = 0;
  auto feed = [&](std::size_t to) {
    if (reader.done()) return;
    auto n = reader.feed(input.substr(from, to - from), r.out);
    CHECK(n <= to - from);
    if (!reader.done()) CHECK(n == to - from);  // everything is consumed until the end of data
    r.consumed += n;
    from = to;
  };
  for (auto c : cuts) feed(c);
  feed(input.size());
  r.done = reader.done();
  r.bare_cr = reader.bare_cr();
  r.too_big = reader.too_big();
  r.eight_bit = reader.eight_bit();
  r.size = reader.size();
  return r;
}

Result feed_whole(std::string_view input, std::uint64_t max = 1 << 20) { return feed_split(input, {}, max); }

Result feed_bytes(std::string_view input, std::uint64_t max = 1 << 20) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return feed_split(input, cuts, max);
}

// Whole, byte by byte, and split once at every position: all must agree.
Result feed_every_way(std::string_view input, std::uint64_t max = 1 << 20) {
  Result whole = feed_whole(input, max);
  CHECK(feed_bytes(input, max) == whole);
  for (std::size_t i = 0; i <= input.size(); ++i) {
    INFO("split at " << i);
    CHECK(feed_split(input, {i}, max) == whole);
  }
  return whole;
}

// What a stored message must never contain: a bare CR or LF, or a line holding only a dot.
void check_canonical(const std::string& content) {
  for (std::size_t i = 0; i < content.size(); ++i) {
    if (content[i] == '\r') {
      REQUIRE(i + 1 < content.size());
      CHECK(content[i + 1] == '\n');
    }
    if (content[i] == '\n') {
      REQUIRE(i > 0);
      CHECK(content[i - 1] == '\r');
    }
  }
  CHECK(content.find("\r\n.\r\n") == std::string::npos);
  CHECK(content.rfind(".\r\n", 0) != 0);
}

}  // namespace

TEST_CASE("a plain message ends at CRLF . CRLF", "[data]") {
  std::string input = "Subject: hi\r\n\r\nHello\r\n.\r\n";
  auto r = feed_every_way(input);
  CHECK(r.done);
  CHECK(r.out == "Subject: hi\r\n\r\nHello\r\n");
  CHECK(r.consumed == input.size());
  CHECK(r.size == r.out.size());
  CHECK_FALSE(r.bare_cr);
  CHECK_FALSE(r.too_big);
  CHECK_FALSE(r.eight_bit);
}

TEST_CASE("an empty message", "[data]") {
  auto r = feed_every_way(".\r\n");
  CHECK(r.done);
  CHECK(r.out.empty());
  CHECK(r.consumed == 3);
  r = feed_every_way(".\n");
  CHECK(r.done);
  CHECK(r.out.empty());
}

TEST_CASE("not done without the final dot", "[data]") {
  auto r = feed_every_way("Hello\r\n");
  CHECK_FALSE(r.done);
  CHECK(r.out == "Hello\r\n");
  r = feed_every_way("Hello\r\n.");
  CHECK_FALSE(r.done);
  r = feed_every_way("Hello\r\n.\r");
  CHECK_FALSE(r.done);
  CHECK_FALSE(r.bare_cr);  // the LF may still come
}

TEST_CASE("bare LF is a line end and is stored as CRLF", "[data]") {
  // What the Java client sends: PrintStream.println on Linux.
  std::string input = "from: user@gazprom.ru\nsubject: tema \nHello my friend! Java sent this!\n.\n";
  auto r = feed_every_way(input);
  CHECK(r.done);
  CHECK(r.out == "from: user@gazprom.ru\r\nsubject: tema \r\nHello my friend! Java sent this!\r\n");
  CHECK(r.consumed == input.size());
  check_canonical(r.out);
  r = feed_every_way("a\n\nb\r\n\nc\n.\r\n");
  CHECK(r.out == "a\r\n\r\nb\r\n\r\nc\r\n");
}

TEST_CASE("dot-unstuffing", "[data]") {
  auto r = feed_every_way("..\r\n..x\r\n.y\r\n...\r\nx.\r\n. \r\n.\r\n");
  CHECK(r.done);
  CHECK(r.out == ".\r\n.x\r\ny\r\n..\r\nx.\r\n \r\n");
  r = feed_every_way("..\n.\n");
  CHECK(r.out == ".\r\n");
}

TEST_CASE("what follows the final dot is left for the next command", "[data]") {
  std::string input = "body\r\n.\r\nQUIT\r\n";
  auto r = feed_every_way(input);
  CHECK(r.done);
  CHECK(r.consumed == input.size() - 6);
  CHECK(input.substr(r.consumed) == "QUIT\r\n");

  DataReader reader(100);
  std::string out;
  CHECK(reader.feed(input, out) == input.size() - 6);
  CHECK(reader.feed("more", out) == 0);  // done: nothing more is taken
  CHECK(out == "body\r\n");
}

TEST_CASE("a bare CR is flagged and never ends a line", "[data][security]") {
  auto r = feed_every_way("a\rb\r\n.\r\n");
  CHECK(r.done);
  CHECK(r.bare_cr);
  r = feed_every_way("a\r\r\n.\r\n");
  CHECK(r.done);
  CHECK(r.bare_cr);
  r = feed_every_way("\r.\r\n.\r\n");
  CHECK(r.done);
  CHECK(r.bare_cr);
  CHECK(r.consumed == 7);
  r = feed_every_way("clean\r\n.\r\n");
  CHECK_FALSE(r.bare_cr);
}

TEST_CASE("SMTP smuggling variants", "[data][security]") {
  const std::string head = "From: a@example.org\r\nSubject: one\r\n\r\nfirst message";
  const std::string smuggled =
      "MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n"
      "From: admin@bank.example\r\n\r\nsmuggled\r\n";
  const std::string tail = "\r\n.\r\n";

  struct Variant {
    std::string marker;
    bool ends_data;  // a line end for mailhop: the rest is the next command of the same session
    bool bare_cr;
  };
  const std::vector<Variant> variants = {
      {"\r\n.\r\n", true, false}, {"\n.\n", true, false},    {"\r\n.\n", true, false},
      {"\n.\r\n", true, false},   {"\r.\r\n", false, true},  {"\r\n.\r", false, true},
      {"\r.\r", false, true},     {"\n.\r", false, true},    {"\r.\n", false, true},
      {std::string("\r\n\0.\r\n", 6), false, false},        {".\r\n", false, false},
  };
  for (const auto& v : variants) {
    std::string input = head + v.marker + smuggled + tail;
    std::string shown;
    for (char c : v.marker) shown += c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\0' ? "\\0" : std::string(1, c);
    INFO("marker " << shown);
    auto r = feed_every_way(input);
    CHECK(r.done);
    CHECK(r.bare_cr == v.bare_cr);
    check_canonical(r.out);
    if (v.ends_data) {
      CHECK(r.out == "From: a@example.org\r\nSubject: one\r\n\r\nfirst message\r\n");
      CHECK(input.substr(r.consumed) == smuggled + tail);
    } else {
      // The whole input is one message; the smuggled commands are content, never commands.
      CHECK(r.consumed == input.size());
      CHECK(r.out.find("MAIL FROM:<admin@bank.example>") != std::string::npos);
    }
  }
}

TEST_CASE("the size limit discards content while reading and still finds the end", "[data]") {
  std::string body(100, 'x');
  std::string input = body + "\r\n" + body + "\r\n.\r\nQUIT\r\n";
  auto r = feed_every_way(input, 150);
  CHECK(r.done);
  CHECK(r.too_big);
  CHECK(r.size == 204);
  CHECK(r.out == (body + "\r\n" + body).substr(0, 150));  // the first max_size bytes, however fed
  CHECK(input.substr(r.consumed) == "QUIT\r\n");

  r = feed_every_way("12345678\r\n.\r\n", 10);  // exactly at the limit
  CHECK_FALSE(r.too_big);
  CHECK(r.out == "12345678\r\n");
  r = feed_every_way("123456789\r\n.\r\n", 10);
  CHECK(r.too_big);
  CHECK(r.size == 11);
}

TEST_CASE("8-bit content is noticed", "[data]") {
  auto r = feed_every_way("caf\xc3\xa9\r\n.\r\n");
  CHECK(r.eight_bit);
  CHECK(r.out == "caf\xc3\xa9\r\n");
  r = feed_every_way("\xff\n.\n");
  CHECK(r.eight_bit);
  r = feed_every_way("plain\x7f\r\n.\r\n");
  CHECK_FALSE(r.eight_bit);
}

TEST_CASE("a long message fed in uneven chunks", "[data]") {
  std::string input, expected;
  for (int i = 0; i < 500; ++i) {
    std::string line = (i % 7 == 0 ? "." : "") + std::string(static_cast<std::size_t>(i % 97), 'a' + i % 26);
    input += (i % 7 == 0 ? "." : "") + line + (i % 3 ? "\r\n" : "\n");
    expected += line + "\r\n";
  }
  input += ".\r\n";
  std::vector<std::size_t> cuts;
  for (std::size_t at = 13; at < input.size(); at += 1 + at % 61) cuts.push_back(at);
  auto r = feed_split(input, cuts);
  CHECK(r.done);
  CHECK(r.out == expected);
  CHECK(r == feed_whole(input));
}
