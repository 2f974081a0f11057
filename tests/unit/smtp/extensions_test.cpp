// parse_ehlo_reply: the capabilities a next hop offers.
#include <catch2/catch.hpp>

#include "mailhop/smtp/extensions.hpp"

using namespace mailhop::smtp;

namespace {
Reply ehlo(std::vector<std::string> lines) { return Reply{250, std::move(lines)}; }
}  // namespace

TEST_CASE("a typical EHLO reply", "[ehlo]") {
  auto caps = parse_ehlo_reply(ehlo({"smtp.example.com Hello", "PIPELINING", "SIZE 1000", "STARTTLS",
                                     "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN",
                                     "DSN", "CHUNKING"}));
  CHECK(caps.pipelining);
  CHECK(caps.starttls);
  CHECK(caps.eight_bit_mime);
  CHECK(caps.smtputf8);
  CHECK(caps.enhanced_status_codes);
  CHECK(caps.size);
  CHECK(caps.max_size == 1000);
  CHECK(caps.auth == std::vector<std::string>{"PLAIN", "LOGIN"});
  CHECK(caps.has_auth("PLAIN"));
  CHECK(caps.has_auth("login"));
  CHECK_FALSE(caps.has_auth("XOAUTH2"));
}

TEST_CASE("the greeting line is not a keyword", "[ehlo]") {
  auto caps = parse_ehlo_reply(ehlo({"PIPELINING"}));
  CHECK_FALSE(caps.pipelining);
  caps = parse_ehlo_reply(ehlo({}));
  CHECK_FALSE(caps.size);
}

TEST_CASE("lower-case keywords and mechanisms", "[ehlo]") {
  auto caps = parse_ehlo_reply(ehlo({"mx", "pipelining", "starttls", "size", "auth login xoauth2", "8bitmime"}));
  CHECK(caps.pipelining);
  CHECK(caps.starttls);
  CHECK(caps.eight_bit_mime);
  CHECK(caps.size);
  CHECK(caps.max_size == 0);
  CHECK(caps.auth == std::vector<std::string>{"LOGIN", "XOAUTH2"});
}

TEST_CASE("the old AUTH= form and duplicates", "[ehlo]") {
  auto caps = parse_ehlo_reply(ehlo({"mx", "AUTH=LOGIN", "AUTH LOGIN PLAIN"}));
  CHECK(caps.auth == std::vector<std::string>{"LOGIN", "PLAIN"});
  caps = parse_ehlo_reply(ehlo({"mx", "AUTH=LOGIN PLAIN"}));
  CHECK(caps.auth == std::vector<std::string>{"LOGIN", "PLAIN"});
  caps = parse_ehlo_reply(ehlo({"mx", "AUTH"}));
  CHECK(caps.auth.empty());
}

TEST_CASE("SIZE arguments", "[ehlo]") {
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE 0"})).max_size == 0);
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE 0"})).size);
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE 52428800"})).max_size == 52428800);
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE  157286400 "})).max_size == 157286400);
  auto caps = parse_ehlo_reply(ehlo({"mx", "SIZE lots"}));
  CHECK(caps.size);
  CHECK(caps.max_size == 0);
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE 12x"})).max_size == 0);
  CHECK(parse_ehlo_reply(ehlo({"mx", "SIZE 99999999999999999999999"})).max_size == 0);
}

TEST_CASE("unknown keywords and near misses are ignored", "[ehlo]") {
  auto caps = parse_ehlo_reply(ehlo({"mx", "X-EXPS GSSAPI", "PIPELININGX", "STARTTLS2", "BINARYMIME", ""}));
  CHECK_FALSE(caps.pipelining);
  CHECK_FALSE(caps.starttls);
  CHECK(caps.auth.empty());
}
