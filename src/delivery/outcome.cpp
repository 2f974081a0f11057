// Classification of replies into per-recipient outcomes (see mailhop/delivery/outcome.hpp).
#include "mailhop/delivery/outcome.hpp"

namespace mailhop::delivery {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::sent: return "sent";
    case Outcome::deferred: return "deferred";
    case Outcome::failed: return "failed";
  }
  return "deferred";
}

RecipientResult classify(const smtp::Reply& reply) {
  RecipientResult r;
  r.remote = true;
  r.text = reply.to_string();
  const int klass = reply.code / 100;
  std::string enhanced = reply.enhanced();
  if (klass == 2) {
    r.outcome = Outcome::sent;
  } else if (klass == 5) {
    r.outcome = Outcome::failed;
  } else {
    r.outcome = Outcome::deferred;  // 4xx, and anything unexpected: never bounce on a protocol error
  }
  // An enhanced code whose class disagrees with the reply's (a "550 4.1.1") follows the reply.
  const char want = r.outcome == Outcome::sent ? '2' : r.outcome == Outcome::failed ? '5' : '4';
  if (enhanced.empty()) {
    enhanced = std::string(1, want) + ".0.0";
  } else if (enhanced[0] != want) {
    enhanced[0] = want;
  }
  r.dsn = std::move(enhanced);
  return r;
}

RecipientResult local_result(Outcome outcome, std::string dsn, std::string reason) {
  return RecipientResult{outcome, std::move(dsn), std::move(reason), false};
}

}  // namespace mailhop::delivery

namespace mailhop::delivery {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "X.Y.Z" at the front of `text` (RFC 3463 §2: class, 1-3 digit subject, 1-3 digit detail).
std::size_t enhanced_length(std::string_view text) {
  std::size_t i = 0;
  if (text.size() < 5 || !is_digit(text[0]) || text[1] != '.') return 0;
  i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) ++i;
    if (i == start) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string stored_text(const RecipientResult& result) {
  if (result.remote || result.dsn.empty()) return result.text;
  return result.dsn + " " + result.text;
}

StoredReply parse_stored_text(std::string_view text, char klass) {
  StoredReply out;
  std::string_view rest = text;
  if (text.size() >= 4 && is_digit(text[0]) && is_digit(text[1]) && is_digit(text[2]) &&
      (text[3] == ' ' || text[3] == '-')) {
    out.remote = true;
    rest = text.substr(4);
  }
  if (std::size_t n = enhanced_length(rest)) out.dsn = std::string(rest.substr(0, n));
  if (out.dsn.empty()) out.dsn = std::string(1, klass) + ".0.0";
  out.dsn[0] = klass;
  return out;
}

}  // namespace mailhop::delivery
