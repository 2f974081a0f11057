// parse_command, parse_mail_argument, parse_rcpt_argument: the lenient parsing Postfix does by
// default, ESMTP parameters, the null path, source routes, HTTP request lines.
#include <catch2/catch.hpp>

#include "mailhop/smtp/command.hpp"

using namespace mailhop::smtp;

TEST_CASE("verbs are recognised in any letter case", "[command]") {
  CHECK(parse_command("EHLO client.example").verb == Verb::ehlo);
  CHECK(parse_command("ehlo client.example").verb == Verb::ehlo);
  CHECK(parse_command("HeLo x").verb == Verb::helo);
  CHECK(parse_command("mail FROM:<a@b>").verb == Verb::mail);
  CHECK(parse_command("rcpt to:<a@b>").verb == Verb::rcpt);
  CHECK(parse_command("data").verb == Verb::data);
  CHECK(parse_command("BDAT 10 LAST").verb == Verb::bdat);
  CHECK(parse_command("RSET").verb == Verb::rset);
  CHECK(parse_command("noop").verb == Verb::noop);
  CHECK(parse_command("QUIT").verb == Verb::quit);
  CHECK(parse_command("VRFY postmaster").verb == Verb::vrfy);
  CHECK(parse_command("EXPN list").verb == Verb::expn);
  CHECK(parse_command("help").verb == Verb::help);
  CHECK(parse_command("StartTLS").verb == Verb::starttls);
  CHECK(parse_command("AUTH PLAIN AGFAAGI=").verb == Verb::auth);
}

TEST_CASE("name is upper-cased and the argument trimmed", "[command]") {
  auto c = parse_command("mail   FROM:<a@b>  SIZE=10   ");
  CHECK(c.name == "MAIL");
  CHECK(c.argument == "FROM:<a@b>  SIZE=10");

  c = parse_command("DATA");
  CHECK(c.name == "DATA");
  CHECK(c.argument.empty());

  c = parse_command("  NOOP\t");
  CHECK(c.verb == Verb::noop);
  CHECK(c.argument.empty());

  c = parse_command("EHLO\tclient");
  CHECK(c.verb == Verb::ehlo);
  CHECK(c.argument == "client");
}

TEST_CASE("unknown and malformed commands", "[command]") {
  auto c = parse_command("FOO bar");
  CHECK(c.verb == Verb::unknown);
  CHECK(c.name == "FOO");
  CHECK(parse_command("").verb == Verb::unknown);
  CHECK(parse_command("   ").verb == Verb::unknown);
  CHECK(parse_command("MAILFROM:<a@b>").verb == Verb::unknown);
  CHECK(parse_command("DATAX").verb == Verb::unknown);
  CHECK(parse_command("QUIT\r").verb == Verb::unknown);  // a CR is not white space
}

TEST_CASE("HTTP request lines are recognised", "[command][security]") {
  for (const char* line : {"GET / HTTP/1.1", "POST /submit HTTP/1.0", "HEAD / HTTP/1.1", "PUT /x HTTP/1.1",
                           "CONNECT relay.example:25 HTTP/1.1", "OPTIONS * HTTP/1.1", "DELETE /q HTTP/1.1",
                           "GET /", "get /index.html", "POST x", "FOO /bar HTTP/1.1", "BREW /pot http/1.0"}) {
    INFO(line);
    CHECK(parse_command(line).verb == Verb::http);
  }
  CHECK(parse_command("GET / HTTP/1.1").name == "GET");
  // Not HTTP: a method name without a space, or an SMTP line that merely mentions HTTP.
  CHECK(parse_command("GET").verb == Verb::unknown);
  CHECK(parse_command("HELO GET").verb == Verb::helo);
  CHECK(parse_command("HELP HTTP").verb == Verb::help);
  CHECK(parse_command("HELO HTTP/2").verb == Verb::helo);
  CHECK(parse_command("Host: relay.example").verb == Verb::unknown);
}

TEST_CASE("MAIL FROM: the strict form", "[command][mail]") {
  auto r = parse_mail_argument("FROM:<user@example.org>");
  REQUIRE(r.path);
  CHECK(r.error.empty());
  CHECK(r.path->address == "user@example.org");
  CHECK(r.path->params.empty());
}

TEST_CASE("MAIL FROM: lenient forms real clients send", "[command][mail]") {
  for (const char* arg : {"from:<user@gazprom.ru>", "FROM: <user@gazprom.ru>", "FROM:user@gazprom.ru",
                          "FROM: user@gazprom.ru ", "From:   <user@gazprom.ru>   ", "FROM:< user@gazprom.ru >",
                          "FROM:\t<user@gazprom.ru>"}) {
    INFO(arg);
    auto r = parse_mail_argument(arg);
    REQUIRE(r.path);
    CHECK(r.path->address == "user@gazprom.ru");
    CHECK(r.path->params.empty());
  }
  // The Java client, through the command parser: "MAIL FROM: user@gazprom.ru " (bare LF stripped).
  auto cmd = parse_command("MAIL FROM: user@gazprom.ru ");
  REQUIRE(cmd.verb == Verb::mail);
  auto r = parse_mail_argument(cmd.argument);
  REQUIRE(r.path);
  CHECK(r.path->address == "user@gazprom.ru");
  auto rc = parse_rcpt_argument(parse_command("RCPT TO: pikselnsk@yandex.ru ").argument);
  REQUIRE(rc.path);
  CHECK(rc.path->address == "pikselnsk@yandex.ru");
}

TEST_CASE("the null reverse-path", "[command][mail]") {
  for (const char* arg : {"FROM:<>", "FROM: <>", "from:<> ", "FROM:< >"}) {
    INFO(arg);
    auto r = parse_mail_argument(arg);
    REQUIRE(r.path);
    CHECK(r.path->address.empty());
  }
  auto r = parse_mail_argument("FROM:<> SIZE=100 BODY=8BITMIME");
  REQUIRE(r.path);
  CHECK(r.path->address.empty());
  CHECK(r.path->params.size() == 2);
  // Not a null path: nothing at all.
  CHECK_FALSE(parse_mail_argument("FROM:").path);
  CHECK_FALSE(parse_mail_argument("FROM:   ").path);
  // RCPT TO:<> is never valid.
  auto rc = parse_rcpt_argument("TO:<>");
  CHECK_FALSE(rc.path);
  CHECK_FALSE(rc.error.empty());
}

TEST_CASE("ESMTP parameters", "[command][mail]") {
  auto r = parse_mail_argument("FROM:<a@example.org> size=12345 body=8bitmime SMTPUTF8");
  REQUIRE(r.path);
  const auto& p = *r.path;
  REQUIRE(p.params.size() == 3);
  CHECK(p.params[0] == std::pair<std::string, std::string>{"SIZE", "12345"});
  CHECK(p.params[1] == std::pair<std::string, std::string>{"BODY", "8bitmime"});
  CHECK(p.params[2] == std::pair<std::string, std::string>{"SMTPUTF8", ""});
  REQUIRE(p.param("SIZE"));
  CHECK(*p.param("SIZE") == "12345");
  REQUIRE(p.param("size"));
  REQUIRE(p.param("SmtpUtf8"));
  CHECK(p.param("SMTPUTF8")->empty());
  CHECK(p.param("AUTH") == nullptr);

  r = parse_mail_argument("FROM:<a@example.org> BODY=7BIT");
  REQUIRE(r.path);
  CHECK(*r.path->param("BODY") == "7BIT");

  // Without brackets, parameters still follow the address.
  r = parse_mail_argument("FROM: a@example.org SIZE=10 ");
  REQUIRE(r.path);
  CHECK(r.path->address == "a@example.org");
  CHECK(*r.path->param("SIZE") == "10");

  // Unknown parameters are passed on for the session to judge.
  r = parse_mail_argument("FROM:<a@example.org> AUTH=<> X-FOO");
  REQUIRE(r.path);
  CHECK(*r.path->param("AUTH") == "<>");
  REQUIRE(r.path->param("X-FOO"));

  r = parse_rcpt_argument("TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org");
  REQUIRE(r.path);
  CHECK(*r.path->param("NOTIFY") == "SUCCESS,FAILURE");
  CHECK(*r.path->param("ORCPT") == "rfc822;b@example.org");
}

TEST_CASE("bad ESMTP parameters", "[command][mail]") {
  for (const char* arg : {"FROM:<a@b.c> SIZE=", "FROM:<a@b.c> SIZE=abc", "FROM:<a@b.c> SIZE=-1",
                          "FROM:<a@b.c> SIZE=99999999999999999999999", "FROM:<a@b.c> BODY=BINARYMIME",
                          "FROM:<a@b.c> BODY=", "FROM:<a@b.c> SMTPUTF8=yes", "FROM:<a@b.c> =x",
                          "FROM:<a@b.c> -X=1", "FROM:<a@b.c> X=a=b", "FROM:<a@b.c>SIZE=1",
                          "FROM:<a@b.c> SI\x01ZE=1", "FROM:<a@b.c> X=\x7f"}) {
    INFO(arg);
    auto r = parse_mail_argument(arg);
    CHECK_FALSE(r.path);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("source routes are accepted and the route dropped", "[command][mail]") {
  auto r = parse_mail_argument("FROM:<@a.example,@b.example:user@c.example>");
  REQUIRE(r.path);
  CHECK(r.path->address == "user@c.example");
  r = parse_rcpt_argument("TO:<@relay.example:joe@d.example> NOTIFY=NEVER");
  REQUIRE(r.path);
  CHECK(r.path->address == "joe@d.example");
  CHECK(*r.path->param("NOTIFY") == "NEVER");
  CHECK_FALSE(parse_rcpt_argument("TO:<@relay.example>").path);
  CHECK_FALSE(parse_rcpt_argument("TO:<@relay.example:>").path);
}

TEST_CASE("malformed MAIL and RCPT arguments", "[command][mail]") {
  for (const char* arg : {"", "<a@b.c>", "FROM <a@b.c>", "TO:<a@b.c>", "FROM:<a@b.c", "FROM:<a b@c.d>",
                          "FROM:<a@b.c>>", "FROM:<<a@b.c>>", "FROM:<user>", "FROM:<@b.c>", "FROM:<a@>",
                          "FROM:<a@b..c>", "FROM:<a\r@b.c>", "FROM:<a@b.c\n>", "FROM:a@b.c>"}) {
    INFO(arg);
    auto r = parse_mail_argument(arg);
    CHECK_FALSE(r.path);
    CHECK_FALSE(r.error.empty());
  }
  auto r = parse_mail_argument("TO:<a@b.c>");
  CHECK(r.error == "Syntax: MAIL FROM:<address>");
  r = parse_rcpt_argument("FROM:<a@b.c>");
  CHECK(r.error == "Syntax: RCPT TO:<address>");
  CHECK(parse_mail_argument("FROM:<nobody>").error == "Bad sender address syntax");
  CHECK(parse_rcpt_argument("TO:<nobody>").error == "Bad recipient address syntax");
}

TEST_CASE("quoted local parts, UTF-8 and address literals in paths", "[command][mail]") {
  auto r = parse_rcpt_argument("TO:<\"john doe>x\"@example.org>");
  REQUIRE(r.path);
  CHECK(r.path->address == "\"john doe>x\"@example.org");
  r = parse_rcpt_argument("TO:<\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84> ");
  REQUIRE(r.path);
  CHECK(r.path->address == "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84");
  r = parse_rcpt_argument("TO:<postmaster@[192.0.2.1]>");
  REQUIRE(r.path);
  CHECK(r.path->address == "postmaster@[192.0.2.1]");
}

TEST_CASE("RCPT TO:<Postmaster> without a domain is accepted, for RCPT only (RFC 5321 §4.5.1)", "[command][rcpt]") {
  auto r = parse_rcpt_argument("TO:<Postmaster>");
  REQUIRE(r.path);
  CHECK(r.path->address == "Postmaster");
  r = parse_rcpt_argument("TO:<postmaster> NOTIFY=NEVER");
  REQUIRE(r.path);
  CHECK(r.path->address == "postmaster");
  REQUIRE(r.path->param("NOTIFY"));
  CHECK(parse_rcpt_argument("TO:<POSTMASTER>").path);
  // Any other local part still needs its domain, and MAIL has no such exception.
  CHECK_FALSE(parse_rcpt_argument("TO:<postmasters>").path);
  CHECK_FALSE(parse_rcpt_argument("TO:<abuse>").path);
  CHECK_FALSE(parse_rcpt_argument("TO:<\"postmaster\">").path);
  CHECK_FALSE(parse_mail_argument("FROM:<postmaster>").path);
}
