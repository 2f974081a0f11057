// DotStuffer and dot_stuff: stuffing, the final dot, streaming in chunks split at every
// position, and round trips through DataReader.
#include <catch2/catch.hpp>

#include <string>

#include "mailhop/smtp/data_reader.hpp"
#include "mailhop/smtp/dot_codec.hpp"

using namespace mailhop::smtp;

namespace {

std::string stuff_in_chunks(std::string_view content, std::size_t cut1, std::size_t cut2) {
  DotStuffer s;
  std::string out;
  s.encode(content.substr(0, cut1), out);
  s.encode(content.substr(cut1, cut2 - cut1), out);
  s.encode(content.substr(cut2), out);
  s.finish(out);
  return out;
}

std::string unstuff(std::string_view wire) {
  DataReader reader(1 << 20);
  std::string out;
  auto n = reader.feed(wire, out);
  REQUIRE(reader.done());
  REQUIRE(n == wire.size());
  REQUIRE_FALSE(reader.bare_cr());
  return out;
}

const std::vector<std::string> kSamples = {
    "",
    "\r\n",
    ".\r\n",
    "..\r\n",
    ".",
    "Subject: x\r\n\r\n.hidden\r\n..two\r\nend.\r\n",
    "no final line end",
    "line\r\n.",
    "a\r\n.\r\nb\r\n",
    "\r\n\r\n.\r\n\r\n",
};

}  // namespace

TEST_CASE("dot_stuff adds a dot before lines starting with a dot and ends the data", "[dot]") {
  CHECK(dot_stuff("") == ".\r\n");
  CHECK(dot_stuff("Hello\r\n") == "Hello\r\n.\r\n");
  CHECK(dot_stuff("Hello") == "Hello\r\n.\r\n");
  CHECK(dot_stuff(".\r\n") == "..\r\n.\r\n");
  CHECK(dot_stuff(".hidden\r\nx.y\r\n..\r\n") == "..hidden\r\nx.y\r\n...\r\n.\r\n");
  CHECK(dot_stuff("a\r\n.") == "a\r\n..\r\n.\r\n");
  CHECK(dot_stuff("\r\n") == "\r\n.\r\n");
}

TEST_CASE("bare CR and bare LF never leave the encoder", "[dot][security]") {
  CHECK(dot_stuff("a\n.\nb") == "a\r\n..\r\nb\r\n.\r\n");
  CHECK(dot_stuff("a\r.\r\nb") == "a\r\n..\r\nb\r\n.\r\n");
  CHECK(dot_stuff("a\r") == "a\r\n.\r\n");
  CHECK(dot_stuff("\r\r\n") == "\r\n\r\n.\r\n");
}

TEST_CASE("chunked encoding equals whole-buffer encoding at every split", "[dot]") {
  auto samples = kSamples;
  samples.push_back("x\n.\r.\r\n..\r");
  for (const auto& content : samples) {
    INFO("content [" << content << "]");
    auto whole = dot_stuff(content);
    for (std::size_t a = 0; a <= content.size(); ++a)
      for (std::size_t b = a; b <= content.size(); ++b) {
        INFO("cuts " << a << " " << b);
        CHECK(stuff_in_chunks(content, a, b) == whole);
      }
    // Byte by byte.
    DotStuffer s;
    std::string out;
    for (char c : content) s.encode(std::string_view(&c, 1), out);
    s.finish(out);
    CHECK(out == whole);
  }
}

TEST_CASE("an encoder is reusable after finish", "[dot]") {
  DotStuffer s;
  std::string out;
  s.encode("first", out);
  s.finish(out);
  s.encode(".second\r\n", out);
  s.finish(out);
  CHECK(out == "first\r\n.\r\n..second\r\n.\r\n");
}

TEST_CASE("stuffing then reading gives the content back", "[dot]") {
  for (const auto& content : kSamples) {
    INFO("content [" << content << "]");
    auto expected = content;
    if (!expected.empty() && (expected.size() < 2 || expected.substr(expected.size() - 2) != "\r\n"))
      expected += "\r\n";  // the encoder completes a last line
    CHECK(unstuff(dot_stuff(content)) == expected);
  }
  std::string big;
  for (int i = 0; i < 2000; ++i) big += (i % 5 == 0 ? "." : "") + std::to_string(i) + "\r\n";
  CHECK(unstuff(dot_stuff(big)) == big);
}
