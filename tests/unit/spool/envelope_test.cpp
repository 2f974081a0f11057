// The envelope file format: round trips (odd bytes included), and rejection of every damaged
// or unknown form, truncation at any byte in particular.
#include <catch2/catch.hpp>

#include <random>

#include "mailhop/spool/envelope.hpp"

using namespace mailhop::spool;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

Envelope sample() {
  Envelope e;
  e.sender = "alice@example.org";
  e.recipients = {{"bob@example.com", RecipientState::pending, ""},
                  {"carol@example.com", RecipientState::sent, "250 2.0.0 Ok: queued as 4F2A"},
                  {"dave@example.net", RecipientState::failed, "550 5.1.1 <dave@example.net>: no such user"}};
  e.arrival = std::chrono::system_clock::now();
  e.next_attempt = e.arrival + 90s;
  e.attempts = 3;
  e.last_error = "451 4.3.0 try again later";
  e.size = 4096;
  e.eight_bit = true;
  e.smtputf8 = false;
  e.held = true;
  e.client_host = "web1.example.org";
  e.client_ip = "127.0.0.1";
  e.auth_user = "app";
  return e;
}

void require_same(const Envelope& a, const Envelope& b) {
  CHECK(a.id == b.id);
  CHECK(a.sender == b.sender);
  REQUIRE(a.recipients.size() == b.recipients.size());
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    CHECK(a.recipients[i].address == b.recipients[i].address);
    CHECK(a.recipients[i].state == b.recipients[i].state);
    CHECK(a.recipients[i].last_reply == b.recipients[i].last_reply);
  }
  CHECK(a.arrival == b.arrival);
  CHECK(a.next_attempt == b.next_attempt);
  CHECK(a.attempts == b.attempts);
  CHECK(a.last_error == b.last_error);
  CHECK(a.size == b.size);
  CHECK(a.eight_bit == b.eight_bit);
  CHECK(a.smtputf8 == b.smtputf8);
  CHECK(a.held == b.held);
  CHECK(a.client_host == b.client_host);
  CHECK(a.client_ip == b.client_ip);
  CHECK(a.auth_user == b.auth_user);
}

}  // namespace

TEST_CASE("an envelope survives serialize and parse unchanged") {
  auto e = sample();
  auto text = serialize(e);
  CHECK(text.rfind("mailhop-envelope 1\n", 0) == 0);
  CHECK(text.size() >= 4);
  CHECK(text.substr(text.size() - 4) == "end\n");
  auto parsed = parse_envelope(text);
  INFO(parsed.error);
  REQUIRE(parsed.envelope);
  require_same(e, *parsed.envelope);
}

TEST_CASE("odd bytes in values cannot break the format") {
  Envelope e = sample();
  e.sender = "";  // the null sender
  e.last_error = "421 4.4.2 bye\r\nend\nsender: evil\x00\x7f %41 \xc3\xa9 "s;
  REQUIRE(e.last_error->size() == 41);
  e.client_host = "evil\nrcpt: pending x@y";
  e.auth_user = std::nullopt;
  e.recipients = {{"\"john doe\"@example.com", RecipientState::pending, "line1\rline2\n"},
                  {"", RecipientState::failed, " leading space"},
                  {"\"\"", RecipientState::sent, "%%%"},
                  {"j\xc3\xbcrgen@b\xc3\xbc" "cher.de", RecipientState::pending, ""},
                  {"a b%c\td", RecipientState::pending, "trailing  "}};
  auto text = serialize(e);
  // Every value sits on its own line: exactly one line per record.
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines == 1 + 12 + e.recipients.size() + 1);  // version, 12 records, rcpts, end
  for (char c : text) CHECK((static_cast<unsigned char>(c) >= 0x20 || c == '\n'));
  auto parsed = parse_envelope(text);
  INFO(parsed.error);
  REQUIRE(parsed.envelope);
  require_same(e, *parsed.envelope);
}

TEST_CASE("every proper prefix of a valid envelope is rejected") {
  auto text = serialize(sample());
  for (std::size_t n = 0; n < text.size(); ++n) {
    auto parsed = parse_envelope(std::string_view(text).substr(0, n));
    INFO("prefix of " << n << " bytes");
    CHECK_FALSE(parsed.envelope);
    CHECK_FALSE(parsed.error.empty());
  }
  CHECK(parse_envelope(text).envelope);
}

TEST_CASE("unknown versions and damaged records are rejected with a reason") {
  auto text = serialize(sample());
  auto replace = [&](std::string_view from, std::string_view to) {
    auto t = text;
    auto pos = t.find(from);
    REQUIRE(pos != std::string::npos);
    t.replace(pos, from.size(), to);
    return parse_envelope(t);
  };
  auto r = replace("mailhop-envelope 1", "mailhop-envelope 2");
  CHECK_FALSE(r.envelope);
  CHECK_THAT(r.error, Catch::Contains("version"));
  CHECK_FALSE(replace("mailhop-envelope 1", "postfix-queue 1").envelope);
  CHECK_FALSE(replace("\nend\n", "\n").envelope);
  r = replace("\nend\n", "\nend\nsender: x\n");
  CHECK_FALSE(r.envelope);
  CHECK_THAT(r.error, Catch::Contains("after the end"));
  r = replace("held: yes", "colour: blue");
  CHECK_FALSE(r.envelope);
  CHECK_THAT(r.error, Catch::Contains("unknown record 'colour'"));
  r = replace("held: yes", "sender: twice");
  CHECK_FALSE(r.envelope);
  CHECK_THAT(r.error, Catch::Contains("repeated"));
  r = replace("held: yes\n", "");
  CHECK_FALSE(r.envelope);
  CHECK_THAT(r.error, Catch::Contains("missing record 'held'"));
  CHECK_FALSE(replace("held: yes", "held: maybe").envelope);
  CHECK_FALSE(replace("attempts: 3", "attempts: -3").envelope);
  CHECK_FALSE(replace("attempts: 3", "attempts: 99999999999999999999").envelope);
  CHECK_FALSE(replace("size: 4096", "size: 4096x").envelope);
  CHECK_FALSE(replace("alice@example.org", "alice%4").envelope);
  CHECK_FALSE(replace("alice@example.org", "alice%zz").envelope);
  CHECK_FALSE(replace("alice@example.org", "alice\r").envelope);
  CHECK_FALSE(replace("rcpt: pending", "rcpt: lost").envelope);
  CHECK_FALSE(replace("rcpt: pending bob@example.com", "rcpt: pending").envelope);
  CHECK_FALSE(replace("T", "X").envelope);  // the arrival time
  CHECK_FALSE(parse_envelope("").envelope);
  CHECK_FALSE(parse_envelope("\n").envelope);
  CHECK_FALSE(parse_envelope("end\n").envelope);
  CHECK_FALSE(parse_envelope("mailhop-envelope 1\nend\n").envelope);
}

TEST_CASE("times outside the calendar are rejected") {
  auto text = serialize(sample());
  auto pos = text.find("arrival: ") + 9;
  for (std::string bad : {"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
                          "9999-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z",
                          "2026-01-01 00:00:00Z", "2026-01-01T00:00:00.1234567890Z"}) {
    auto t = text;
    t.replace(pos, t.find('\n', pos) - pos, bad);
    INFO(bad);
    CHECK_FALSE(parse_envelope(t).envelope);
  }
  auto t = text;
  t.replace(pos, t.find('\n', pos) - pos, "2024-02-29T23:59:59.5Z");
  auto parsed = parse_envelope(t);
  REQUIRE(parsed.envelope);
  CHECK(parsed.envelope->arrival.time_since_epoch() ==
        std::chrono::sys_days{std::chrono::year{2024} / 2 / 29}.time_since_epoch() + 23h + 59min + 59s + 500ms);
}

TEST_CASE("random damage never crashes the parser and is never silently accepted as the original") {
  auto text = serialize(sample());
  std::mt19937 rng(42);
  for (int round = 0; round < 20000; ++round) {
    auto t = text;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits; ++i) {
      std::size_t pos = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[pos] = static_cast<char>(rng() % 256); break;
        case 1: t.erase(pos, 1 + rng() % 8); break;
        case 2: t.insert(pos, 1, static_cast<char>(rng() % 256)); break;
      }
      if (t.empty()) t = "x";
    }
    auto parsed = parse_envelope(t);  // must not crash (run under ASan in the asan preset)
    if (!parsed.envelope) CHECK_FALSE(parsed.error.empty());
  }
}
