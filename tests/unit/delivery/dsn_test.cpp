// DSN composition (RFC 3464, RFC 6522), checked by parsing the result back: top-level
// headers, the multipart structure and boundary, the delivery-status fields per recipient.
#include <catch2/catch.hpp>

#include <map>

#include "mailhop/delivery/dsn.hpp"

using namespace mailhop;
using namespace mailhop::delivery;

namespace {

struct Part {
  std::string headers;  // unfolded, CRLF separated
  std::string body;
};

// "Name: value" fields of a header block, unfolded, names lower-cased (last one wins).
std::map<std::string, std::string> fields(const std::string& block) {
  std::map<std::string, std::string> out;
  std::string last;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t end = block.find("\r\n", pos);
    if (end == std::string::npos) end = block.size();
    std::string line = block.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) continue;
    if (line[0] == ' ' || line[0] == '\t') {
      out[last] += " " + line.substr(line.find_first_not_of(" \t"));
      continue;
    }
    auto colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    last = line.substr(0, colon);
    for (auto& c : last) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out[last] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return out;
}

std::pair<std::string, std::string> split_head(const std::string& text) {
  auto end = text.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  return {text.substr(0, end + 2), text.substr(end + 4)};
}

// Blocks separated by empty lines.
std::vector<std::string> groups(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\r\n\r\n", pos);
    std::string g = text.substr(pos, end == std::string::npos ? std::string::npos : end + 2 - pos);
    if (!g.empty() && g != "\r\n") out.push_back(g);
    if (end == std::string::npos) break;
    pos = end + 4;
  }
  return out;
}

DsnInput sample() {
  DsnInput in;
  in.hostname = "relay.example.org";
  in.original.sender = "alice@example.org";
  in.original.recipients = {{"bob@example.net", spool::RecipientState::failed, "550 5.1.1 <bob@example.net>: unknown"},
                            {"carol@example.net", spool::RecipientState::sent, "250 2.0.0 Ok"},
                            {"dave@example.net", spool::RecipientState::failed, "4.4.7 Message expired after 9 attempts: x"}};
  in.original.arrival = util::SystemTime{} + std::chrono::hours(24 * 365 * 50);
  in.failed = {{"bob@example.net", "5.1.1", "550 5.1.1 <bob@example.net>: unknown", "smtp.example.net"},
               {"dave@example.net", "5.4.7", "4.4.7 Message expired after 9 attempts: x", ""}};
  in.original_headers = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hello\r\n";
  in.now = in.original.arrival + std::chrono::hours(1);
  return in;
}

}  // namespace

TEST_CASE("dsn: envelope from the null sender to the original sender", "[dsn]") {
  auto in = sample();
  Dsn dsn = make_dsn(in);
  CHECK(dsn.envelope.sender.empty());
  REQUIRE(dsn.envelope.recipients.size() == 1);
  CHECK(dsn.envelope.recipients[0].address == "alice@example.org");
  CHECK(dsn.envelope.recipients[0].state == spool::RecipientState::pending);
  CHECK(dsn.envelope.next_attempt == in.now);
  CHECK(dsn.envelope.size == dsn.content.size());
  CHECK(!dsn.envelope.eight_bit);
}

TEST_CASE("dsn: a multipart/report that parses back", "[dsn]") {
  auto in = sample();
  const std::string c = make_dsn(in).content;

  // Canonical: every LF is part of a CRLF.
  for (std::size_t i = 0; i < c.size(); ++i)
    if (c[i] == '\n') REQUIRE((i > 0 && c[i - 1] == '\r'));

  auto [head, body] = split_head(c);
  auto h = fields(head);
  CHECK(h["from"] == "Mail Delivery System <MAILER-DAEMON@relay.example.org>");
  CHECK(h["to"] == "<alice@example.org>");
  CHECK(h["mime-version"] == "1.0");
  CHECK(h["auto-submitted"] == "auto-replied");
  CHECK(h.count("date") == 1);
  CHECK(h.count("message-id") == 1);
  const std::string& type = h["content-type"];
  CHECK(type.starts_with("multipart/report; report-type=delivery-status;"));
  auto b = type.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  std::string boundary = type.substr(b + 10, type.find('"', b + 10) - b - 10);
  REQUIRE(!boundary.empty());

  // Parts between "--boundary" lines, closed by "--boundary--".
  CHECK(body.ends_with("\r\n--" + boundary + "--\r\n"));
  std::vector<Part> parts;
  std::string delimiter = "--" + boundary + "\r\n";
  std::size_t pos = body.find(delimiter);
  REQUIRE(pos != std::string::npos);
  while (pos != std::string::npos) {
    std::size_t start = pos + delimiter.size();
    std::size_t next = body.find("\r\n--" + boundary, start);
    REQUIRE(next != std::string::npos);
    auto [ph, pb] = split_head(body.substr(start, next + 2 - start));
    parts.push_back(Part{ph, pb});
    pos = body.find(delimiter, next + 2);
  }
  REQUIRE(parts.size() == 3);

  // 1. Human-readable: says who failed and why (lines wrapped with an indent).
  CHECK(fields(parts[0].headers)["content-type"] == "text/plain; charset=us-ascii");
  std::string human = parts[0].body;
  for (std::size_t at; (at = human.find("\r\n    ")) != std::string::npos;) human.replace(at, 6, " ");
  CHECK(human.find("<bob@example.net>: host smtp.example.net said: 550 5.1.1 <bob@example.net>: unknown") !=
        std::string::npos);
  CHECK(human.find("<dave@example.net>: 4.4.7 Message expired after 9 attempts") != std::string::npos);
  CHECK(human.find("carol") == std::string::npos);

  // 2. message/delivery-status: per-message fields, then one group per failed recipient.
  CHECK(fields(parts[1].headers)["content-type"] == "message/delivery-status");
  auto g = groups(parts[1].body);
  REQUIRE(g.size() == 3);
  auto per_message = fields(g[0]);
  CHECK(per_message["reporting-mta"] == "dns; relay.example.org");
  CHECK(per_message["arrival-date"] == util::rfc5322_date(in.original.arrival));
  auto bob = fields(g[1]);
  CHECK(bob["final-recipient"] == "rfc822; bob@example.net");
  CHECK(bob["action"] == "failed");
  CHECK(bob["status"] == "5.1.1");
  CHECK(bob["remote-mta"] == "dns; smtp.example.net");
  CHECK(bob["diagnostic-code"] == "smtp; 550 5.1.1 <bob@example.net>: unknown");
  auto dave = fields(g[2]);
  CHECK(dave["final-recipient"] == "rfc822; dave@example.net");
  CHECK(dave["status"] == "5.4.7");
  CHECK(dave.count("remote-mta") == 0);  // a local reason: no remote MTA, no Diagnostic-Code
  CHECK(dave.count("diagnostic-code") == 0);

  // 3. The original headers.
  CHECK(fields(parts[2].headers)["content-type"] == "text/rfc822-headers");
  CHECK(parts[2].body == in.original_headers + "\r\n");
}

TEST_CASE("dsn: long diagnostics are folded, 8-bit content is declared", "[dsn]") {
  auto in = sample();
  std::string long_reply = "550 5.7.1";
  for (int i = 0; i < 40; ++i) long_reply += " word" + std::to_string(i);
  in.failed = {{"bob@example.net", "5.7.1", long_reply, "smtp.example.net"}};
  in.original_headers = "Subject: caf\xc3\xa9\r\n";
  Dsn dsn = make_dsn(in);
  std::size_t pos = 0;
  while (pos < dsn.content.size()) {
    std::size_t end = dsn.content.find("\r\n", pos);
    CHECK(end - pos <= 78);
    pos = end + 2;
  }
  CHECK(dsn.envelope.eight_bit);
  CHECK(dsn.content.find("Content-Transfer-Encoding: 8bit") != std::string::npos);
}

TEST_CASE("dsn: header_section stops at the empty line", "[dsn]") {
  CHECK(header_section("A: 1\r\nB: 2\r\n\r\nbody\r\n") == "A: 1\r\nB: 2\r\n");
  CHECK(header_section("A: 1\r\n continued\r\n\r\n") == "A: 1\r\n continued\r\n");
  CHECK(header_section("A: 1") == "A: 1\r\n");
}
