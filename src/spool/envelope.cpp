// The envelope file format (docs/spool.md): serialize() and parse_envelope().
//
//   mailhop-envelope 1
//   id: 0005F3A1B2C3D40001000004D2
//   sender: alice@example.org
//   ...
//   rcpt: pending bob@example.com
//   rcpt: sent carol@example.com 250 2.0.0 Ok
//   end
//
// One `key: value` record per line, LF line ends, the version first and an `end` record last,
// so a truncated file is recognisably incomplete (Postfix's END record).
//
// SECURITY: values come from the network (addresses, the next hop's reply text, the client's
// HELO name). They are escaped (%XX for control bytes, DEL and '%'), so no value can end a
// line or forge a record. parse_envelope() reads files that may be damaged or hostile: it
// checks every byte, never indexes past the input, never throws, and rejects anything it does
// not fully understand (unknown version, unknown or repeated record, missing end record).
#include "mailhop/spool/envelope.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <set>

namespace mailhop::spool {

namespace {

constexpr std::string_view kMagic = "mailhop-envelope";
constexpr unsigned kVersion = 1;

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

// %XX for control bytes, DEL and '%'; in a token (a recipient address, which is followed by more
// fields on its line) also for space and '"'. A trailing space is escaped too, so an editor that
// strips trailing blanks cannot change a value.
std::string escape(std::string_view value, bool token) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    bool trailing_space = c == ' ' && i + 1 == value.size();
    if (is_control(c) || c == '%' || trailing_space || (token && (c == ' ' || c == '"'))) {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (text.size() - i < 3) return std::nullopt;
    int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The address token of a rcpt record: escaped, and `""` for the empty address (a literal `""`
// is written %22%22, so the two cannot be confused).
std::string address_token(std::string_view address) {
  return address.empty() ? std::string("\"\"") : escape(address, true);
}

std::optional<std::string> parse_address_token(std::string_view token) {
  if (token == "\"\"") return std::string();
  if (token.empty() || token.find('"') != std::string_view::npos) return std::nullopt;
  return unescape(token);
}

// Times as RFC 3339 UTC with nanoseconds, so a round trip is exact:
// 2026-11-22T03:11:47.123456789Z.
std::string format_time(util::SystemTime t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto days = floor<std::chrono::days>(secs);
  year_month_day ymd{days};
  hh_mm_ss<seconds> hms{secs - days};
  auto nanos = duration_cast<nanoseconds>(t - secs).count();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02lldZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  std::string out(buf);
  out.pop_back();  // the Z
  std::snprintf(buf, sizeof buf, ".%09lldZ", static_cast<long long>(nanos));
  return out + buf;
}

// Exactly `n` decimal digits at `pos`.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos > s.size() || s.size() - pos < n) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::optional<util::SystemTime> parse_time(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.fraction]Z
  auto y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  auto h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !sec) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
  // Beyond these years a nanosecond system_clock overflows.
  if (*y < 1970 || *y > 2200 || *h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  long long nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && n < 9) {
      nanos = nanos * 10 + (s[pos] - '0');
      ++pos;
      ++n;
    }
    if (n == 0) return std::nullopt;
    for (; n < 9; ++n) nanos *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;
  auto t = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*sec} + nanoseconds{nanos};
  return time_point_cast<util::SystemTime::duration>(t);
}

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  if (s.empty() || s.size() > 20 || s[0] < '0' || s[0] > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "yes") return true;
  if (s == "no") return false;
  return std::nullopt;
}

std::optional<RecipientState> parse_state(std::string_view s) {
  if (s == "pending") return RecipientState::pending;
  if (s == "sent") return RecipientState::sent;
  if (s == "failed") return RecipientState::failed;
  return std::nullopt;
}

void record(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  out += ':';
  if (!value.empty()) {
    out += ' ';
    out += value;
  }
  out += '\n';
}

}  // namespace

std::string_view to_string(RecipientState s) {
  switch (s) {
    case RecipientState::pending: return "pending";
    case RecipientState::sent: return "sent";
    case RecipientState::failed: return "failed";
  }
  return "pending";
}

bool Envelope::has_pending() const {
  return std::any_of(recipients.begin(), recipients.end(),
                     [](const Recipient& r) { return r.state == RecipientState::pending; });
}

std::string serialize(const Envelope& e) {
  std::string out;
  out.reserve(256 + e.recipients.size() * 64);
  out += kMagic;
  out += ' ';
  out += std::to_string(kVersion);
  out += '\n';
  record(out, "id", e.id.str());
  record(out, "sender", escape(e.sender, false));
  record(out, "arrival", format_time(e.arrival));
  record(out, "size", std::to_string(e.size));
  record(out, "attempts", std::to_string(e.attempts));
  record(out, "next-attempt", format_time(e.next_attempt));
  if (e.last_error) record(out, "last-error", escape(*e.last_error, false));
  record(out, "body", e.eight_bit ? "8bitmime" : "7bit");
  record(out, "smtputf8", e.smtputf8 ? "yes" : "no");
  record(out, "held", e.held ? "yes" : "no");
  record(out, "client-host", escape(e.client_host, false));
  record(out, "client-ip", escape(e.client_ip, false));
  if (e.auth_user) record(out, "auth-user", escape(*e.auth_user, false));
  for (const auto& r : e.recipients) {
    std::string value(to_string(r.state));
    value += ' ';
    value += address_token(r.address);
    if (!r.last_reply.empty()) {
      value += ' ';
      value += escape(r.last_reply, false);
    }
    record(out, "rcpt", value);
  }
  out += "end\n";
  return out;
}

EnvelopeParse parse_envelope(std::string_view text) {
  EnvelopeParse result;
  auto fail = [&result](std::size_t line, std::string why) {
    result.envelope.reset();
    result.error = line ? "line " + std::to_string(line) + ": " + why : why;
    return result;
  };
  if (text.empty()) return fail(0, "empty file");
  if (text.substr(0, kMagic.size()) != kMagic) return fail(1, "not a mailhop envelope");
  if (text.back() != '\n') return fail(0, "no end record (truncated file)");

  Envelope e;
  std::set<std::string, std::less<>> seen;
  bool ended = false;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);  // never npos: the text ends in '\n'
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;

    if (ended) return fail(line_no, "data after the end record");
    for (char c : line)
      if (is_control(static_cast<unsigned char>(c))) return fail(line_no, "control character");

    if (line_no == 1) {
      if (line.size() <= kMagic.size() + 1 || line.substr(0, kMagic.size()) != kMagic ||
          line[kMagic.size()] != ' ')
        return fail(line_no, "not a mailhop envelope");
      auto version = parse_number<unsigned>(line.substr(kMagic.size() + 1));
      if (!version || *version != kVersion)
        return fail(line_no, "unsupported envelope version '" + std::string(line.substr(kMagic.size() + 1)) + "'");
      continue;
    }
    if (line == "end") {
      ended = true;
      continue;
    }

    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(line_no, "malformed record");
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    if (!value.empty()) {
      if (value[0] != ' ' || value.size() == 1) return fail(line_no, "malformed record");
      value.remove_prefix(1);
    }
    std::string printable_key(key.substr(0, 40));
    if (key != "rcpt" && !seen.insert(std::string(key)).second)
      return fail(line_no, "repeated record '" + printable_key + "'");

    auto bad = [&](std::string_view what) { return fail(line_no, "bad " + std::string(what) + " in '" + printable_key + "'"); };
    if (key == "id") {
      auto id = QueueId::parse(value);
      if (!id) return bad("queue ID");
      e.id = *id;
    } else if (key == "sender" || key == "last-error" || key == "client-host" || key == "client-ip" ||
               key == "auth-user") {
      auto v = unescape(value);
      if (!v) return bad("escape");
      if (key == "sender") e.sender = std::move(*v);
      else if (key == "last-error") e.last_error = std::move(*v);
      else if (key == "client-host") e.client_host = std::move(*v);
      else if (key == "client-ip") e.client_ip = std::move(*v);
      else e.auth_user = std::move(*v);
    } else if (key == "arrival" || key == "next-attempt") {
      auto t = parse_time(value);
      if (!t) return bad("time");
      (key == "arrival" ? e.arrival : e.next_attempt) = *t;
    } else if (key == "size") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n) return bad("number");
      e.size = *n;
    } else if (key == "attempts") {
      auto n = parse_number<unsigned>(value);
      if (!n) return bad("number");
      e.attempts = *n;
    } else if (key == "body") {
      if (value == "8bitmime") e.eight_bit = true;
      else if (value == "7bit") e.eight_bit = false;
      else return bad("value");
    } else if (key == "smtputf8" || key == "held") {
      auto b = parse_bool(value);
      if (!b) return bad("value (yes or no)");
      (key == "held" ? e.held : e.smtputf8) = *b;
    } else if (key == "rcpt") {
      // rcpt: STATE ADDRESS [REPLY]
      std::size_t sp1 = value.find(' ');
      if (sp1 == std::string_view::npos) return bad("recipient");
      auto state = parse_state(value.substr(0, sp1));
      if (!state) return bad("recipient state");
      std::string_view rest = value.substr(sp1 + 1);
      std::size_t sp2 = rest.find(' ');
      auto address = parse_address_token(rest.substr(0, sp2));
      if (!address) return bad("recipient address");
      Recipient r{std::move(*address), *state, {}};
      if (sp2 != std::string_view::npos) {
        auto reply = unescape(rest.substr(sp2 + 1));
        if (!reply || reply->empty()) return bad("recipient reply");
        r.last_reply = std::move(*reply);
      }
      e.recipients.push_back(std::move(r));
    } else {
      return fail(line_no, "unknown record '" + printable_key + "'");
    }
  }
  if (!ended) return fail(0, "no end record (truncated file)");
  for (std::string_view required : {"id", "sender", "arrival", "size", "attempts", "next-attempt", "body",
                                    "smtputf8", "held", "client-host", "client-ip"})
    if (!seen.contains(required)) return fail(0, "missing record '" + std::string(required) + "'");
  result.envelope = std::move(e);
  return result;
}

}  // namespace mailhop::spool
