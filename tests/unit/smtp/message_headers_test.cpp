// header_section_end and has_header_field.
#include <catch2/catch.hpp>

#include "mailhop/smtp/message_headers.hpp"

using namespace mailhop::smtp;

TEST_CASE("the header section ends at the empty line", "[headers]") {
  std::string m = "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n";
  auto end = header_section_end(m);
  REQUIRE(end);
  CHECK(*end == 24);
  CHECK(m.substr(*end) == "\r\nbody\r\n");
  CHECK(header_section_end(m, true) == end);
}

TEST_CASE("continuation lines belong to the header section", "[headers]") {
  std::string m = "Subject: a very\r\n long subject\r\n\tand more\r\nTo: x@y\r\n\r\nbody";
  auto end = header_section_end(m);
  REQUIRE(end);
  CHECK(m.substr(*end) == "\r\nbody");
}

TEST_CASE("a line that is not a header field ends the section", "[headers]") {
  std::string m = "Subject: x\r\nHello world\r\n";
  REQUIRE(header_section_end(m));
  CHECK(*header_section_end(m) == 12);
  CHECK(header_section_end("Hello\r\n") == std::optional<std::size_t>(0));
  CHECK(header_section_end(" folded first\r\n") == std::optional<std::size_t>(0));
  CHECK(header_section_end(": no name\r\n") == std::optional<std::size_t>(0));
  CHECK(header_section_end("\r\nbody\r\n") == std::optional<std::size_t>(0));
  // The obsolete "Name : value" form is a field (RFC 5322 §4.5.3).
  CHECK(header_section_end("Subject : x\r\n\r\n") == std::optional<std::size_t>(13));
}

TEST_CASE("more content may follow: incomplete vs complete", "[headers]") {
  CHECK_FALSE(header_section_end("From: a@b\r\nSubj"));
  CHECK_FALSE(header_section_end("From: a@b\r\n"));
  CHECK_FALSE(header_section_end(""));
  CHECK(header_section_end("From: a@b\r\nSubject: x", true) == std::optional<std::size_t>(21));
  CHECK(header_section_end("From: a@b\r\n", true) == std::optional<std::size_t>(11));
  CHECK(header_section_end("From: a@b\r\nnot a header", true) == std::optional<std::size_t>(11));
  CHECK(header_section_end("", true) == std::optional<std::size_t>(0));
}

TEST_CASE("bare LF line ends are understood too", "[headers]") {
  CHECK(header_section_end("From: a@b\n\nbody") == std::optional<std::size_t>(10));
}

TEST_CASE("has_header_field", "[headers]") {
  std::string h = "From: a@b\r\nmessage-id: <1@b>\r\nSubject: Date: tomorrow\r\n X-Fake: folded\r\nDATE : now\r\n";
  CHECK(has_header_field(h, "Message-ID"));
  CHECK(has_header_field(h, "from"));
  CHECK(has_header_field(h, "Date"));  // "DATE : now"
  CHECK_FALSE(has_header_field(h, "X-Fake"));  // a continuation line, not a field
  CHECK_FALSE(has_header_field(h, "Subject: Date"));
  CHECK_FALSE(has_header_field(h, "To"));
  CHECK_FALSE(has_header_field(h, "Message"));
  CHECK_FALSE(has_header_field("", "Date"));
  CHECK_FALSE(has_header_field("Dated: x\r\n", "Date"));
}
