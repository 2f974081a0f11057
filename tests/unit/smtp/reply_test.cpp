// Reply formatting and the line-by-line ReplyParser: multi-line replies, enhanced codes, errors.
#include <catch2/catch.hpp>

#include "mailhop/smtp/reply.hpp"

using namespace mailhop::smtp;

TEST_CASE("format_reply", "[reply]") {
  CHECK(format_reply(250, "2.0.0", "Ok") == "250 2.0.0 Ok\r\n");
  CHECK(format_reply(354, "", "End data with <CR><LF>.<CR><LF>") == "354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(format_reply(221, "2.0.0", "") == "221 2.0.0\r\n");
  CHECK(format_reply(250, "", "") == "250\r\n");
  // Quoted client input can never add a line to the reply.
  CHECK(format_reply(500, "5.5.1", "Unknown command X\r\n250 fake") == "500 5.5.1 Unknown command X  250 fake\r\n");
}

TEST_CASE("format_multiline", "[reply]") {
  CHECK(format_multiline(250, {"relay.example", "PIPELINING", "SIZE 1000"}) ==
        "250-relay.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
  CHECK(format_multiline(214, {"one line"}) == "214 one line\r\n");
}

TEST_CASE("single-line replies", "[reply]") {
  ReplyParser p;
  REQUIRE(p.feed_line("250 2.0.0 Ok: queued as ABC") == ReplyParser::Status::complete);
  auto r = p.take();
  CHECK(r.code == 250);
  CHECK(r.lines == std::vector<std::string>{"2.0.0 Ok: queued as ABC"});
  CHECK(r.enhanced() == "2.0.0");
  CHECK(r.positive());
  CHECK_FALSE(r.transient());
  CHECK_FALSE(r.permanent());
  CHECK(r.to_string() == "250 2.0.0 Ok: queued as ABC");

  REQUIRE(p.feed_line("451 4.3.0 Try again later") == ReplyParser::Status::complete);
  r = p.take();
  CHECK(r.transient());
  CHECK(r.enhanced() == "4.3.0");

  REQUIRE(p.feed_line("550 5.1.1 <x@y>: Recipient address rejected") == ReplyParser::Status::complete);
  r = p.take();
  CHECK(r.permanent());
  CHECK(r.enhanced() == "5.1.1");
  CHECK(r.to_string() == "550 5.1.1 <x@y>: Recipient address rejected");

  REQUIRE(p.feed_line("354 Go ahead") == ReplyParser::Status::complete);
  r = p.take();
  CHECK(r.positive());
  CHECK(r.enhanced().empty());
}

TEST_CASE("a bare code is a valid last line", "[reply]") {
  ReplyParser p;
  REQUIRE(p.feed_line("250") == ReplyParser::Status::complete);
  auto r = p.take();
  CHECK(r.code == 250);
  CHECK(r.lines == std::vector<std::string>{""});
  CHECK(r.to_string() == "250");
  CHECK(r.enhanced().empty());

  REQUIRE(p.feed_line("250-first") == ReplyParser::Status::incomplete);
  REQUIRE(p.feed_line("250") == ReplyParser::Status::complete);
  CHECK(p.take().lines == std::vector<std::string>{"first", ""});
}

TEST_CASE("multi-line replies", "[reply]") {
  ReplyParser p;
  CHECK(p.feed_line("250-mx.example.com at your service") == ReplyParser::Status::incomplete);
  CHECK(p.feed_line("250-PIPELINING") == ReplyParser::Status::incomplete);
  CHECK(p.feed_line("250-AUTH PLAIN LOGIN") == ReplyParser::Status::incomplete);
  CHECK(p.feed_line("250 SIZE 35882577") == ReplyParser::Status::complete);
  auto r = p.take();
  CHECK(r.code == 250);
  CHECK(r.lines ==
        std::vector<std::string>{"mx.example.com at your service", "PIPELINING", "AUTH PLAIN LOGIN", "SIZE 35882577"});
  CHECK(r.to_string() == "250 mx.example.com at your service PIPELINING AUTH PLAIN LOGIN SIZE 35882577");

  // The parser is ready for the next reply after take().
  CHECK(p.feed_line("221 2.0.0 Bye") == ReplyParser::Status::complete);
  r = p.take();
  CHECK(r.code == 221);
  CHECK(r.lines.size() == 1);

  CHECK(p.feed_line("550-5.7.1 Message rejected") == ReplyParser::Status::incomplete);
  CHECK(p.feed_line("550 5.7.1 see https://example/help") == ReplyParser::Status::complete);
  r = p.take();
  CHECK(r.enhanced() == "5.7.1");
}

TEST_CASE("malformed reply lines", "[reply]") {
  for (const char* line : {"", "25", "abc", "2500 x", "250x", "250:ok", "-250 x", " 250 x", "199 x", "600 x",
                           "099 x", "HTTP/1.1 400 Bad Request"}) {
    INFO(line);
    ReplyParser p;
    CHECK(p.feed_line(line) == ReplyParser::Status::error);
    CHECK(p.error().rfind("bad reply line", 0) == 0);
  }
}

TEST_CASE("a code that changes within a reply is an error", "[reply]") {
  ReplyParser p;
  CHECK(p.feed_line("250-first") == ReplyParser::Status::incomplete);
  CHECK(p.feed_line("550 second") == ReplyParser::Status::error);
  CHECK_FALSE(p.error().empty());
  // After an error the parser starts afresh.
  CHECK(p.feed_line("220 ready") == ReplyParser::Status::complete);
  CHECK(p.take().lines == std::vector<std::string>{"ready"});
}

TEST_CASE("a trailing CR is not part of the text", "[reply]") {
  ReplyParser p;
  CHECK(p.feed_line("250 ok\r") == ReplyParser::Status::complete);
  CHECK(p.take().lines == std::vector<std::string>{"ok"});
}

TEST_CASE("enhanced codes are recognised only in their own form", "[reply]") {
  auto enh = [](std::string first) { return Reply{250, {std::move(first)}}.enhanced(); };
  CHECK(enh("2.1.5 Ok") == "2.1.5");
  CHECK(enh("5.7.139 Authentication unsuccessful") == "5.7.139");
  CHECK(enh("4.4.2") == "4.4.2");
  CHECK(enh("2.0 Ok").empty());
  CHECK(enh("3.0.0 x").empty());
  CHECK(enh("2.0.0Ok").empty());
  CHECK(enh("2.0000.0 x").empty());
  CHECK(enh("Ok 2.0.0").empty());
  CHECK(Reply{}.enhanced().empty());
}
