// Mailbox syntax checks (RFC 5321 §4.1.2, §4.5.3.1; RFC 6531 §3.3 for UTF-8).
//
// SECURITY: input is an address as a client sent it. The checks refuse everything that could
// change meaning further along: control characters (CR, LF, NUL), spaces outside quotes, angle
// brackets, invalid UTF-8. They are lenient where real mail is sloppy and nothing breaks:
// dots in a local part may repeat or end it ("first..last", "name.@docomo.ne.jp", which
// Postfix accepts too), and domain labels may hold '_'.
#include "mailhop/smtp/address.hpp"

#include <arpa/inet.h>

#include <string>

#include "ascii.hpp"

namespace mailhop::smtp {
namespace {

constexpr std::size_t kMaxMailbox = 254;  // a path is at most 256 octets with its < > (§4.5.3.1.3)
constexpr std::size_t kMaxDomain = 255;   // §4.5.3.1.2
constexpr std::size_t kMaxLabel = 63;     // RFC 1035 §2.3.4

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) { ++i; continue; }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return false;
    if (i + len > s.size()) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

bool is_utf8_byte(char c) { return static_cast<unsigned char>(c) >= 0x80; }

// atext (RFC 5322 §3.2.3), plus UTF-8 (RFC 6531 §3.3).
bool is_atext(char c) {
  if (ascii::is_alpha(c) || ascii::is_digit(c) || is_utf8_byte(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

// The local part, which ends at the returned offset (where the '@' must be); npos when bad.
std::size_t scan_local_part(std::string_view s) {
  if (s.empty()) return std::string_view::npos;
  if (s.front() == '"') {  // quoted-string (RFC 5321 §4.1.2)
    for (std::size_t i = 1; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') return i + 1;
      if (c == '\\') {  // quoted-pair: backslash and one printable ASCII character
        if (i + 1 >= s.size()) return std::string_view::npos;
        char n = s[i + 1];
        if (n < 32 || n > 126) return std::string_view::npos;
        ++i;
        continue;
      }
      if ((c < 32 || c > 126) && !is_utf8_byte(c)) return std::string_view::npos;
    }
    return std::string_view::npos;  // no closing quote
  }
  std::size_t i = 0;
  while (i < s.size() && (is_atext(s[i]) || s[i] == '.')) ++i;
  if (i == 0) return std::string_view::npos;
  for (std::size_t k = 0; k < i; ++k)
    if (s[k] != '.') return i;
  return std::string_view::npos;  // dots only
}

bool valid_address_literal(std::string_view inner) {
  // Printable ASCII only, checked before inet_pton: it reads a C string, so a NUL inside the
  // literal would end its check and let what follows (a CR, a command) through unchecked.
  for (char c : inner)
    if (c < 33 || c > 126) return false;
  std::string text(inner);  // inet_pton wants a NUL-terminated string
  unsigned char buf[16];
  if (ascii::istarts_with(inner, "IPv6:")) return inet_pton(AF_INET6, text.c_str() + 5, buf) == 1;
  if (!inner.empty() && ascii::is_digit(inner.front()))
    return inet_pton(AF_INET, text.c_str(), buf) == 1;
  // General-address-literal: Standardized-tag ":" 1*dcontent (§4.1.3). No tag but IPv6 is
  // registered; dcontent would allow '<', '>' and '"', which are refused here because they
  // end or confuse a path (<…>) in every reply, header and log line that quotes the address.
  auto colon = inner.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == inner.size()) return false;
  for (char c : inner.substr(0, colon))
    if (!ascii::is_alpha(c) && !ascii::is_digit(c) && c != '-') return false;
  for (char c : inner.substr(colon + 1))
    if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\' || c == '<' || c == '>' || c == '"') return false;
  return true;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomain) return false;
  if (d.front() == '[') return d.back() == ']' && valid_address_literal(d.substr(1, d.size() - 2));
  // sub-domain = Let-dig [Ldh-str]: no empty label, none starting or ending with '-' (§4.1.2)
  std::size_t label = 0;
  char prev = '.';
  for (char c : d) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;  // "a..b", ".a", "a.", "a-.b"
      label = 0;
      prev = c;
      continue;
    }
    if (label == 0 && c == '-') return false;
    prev = c;
    if (!ascii::is_alpha(c) && !ascii::is_digit(c) && c != '-' && c != '_' && !is_utf8_byte(c))
      return false;
    if (++label > kMaxLabel) return false;
  }
  return label != 0 && prev != '-';
}

}  // namespace

bool is_valid_mailbox(std::string_view address) {
  if (address.empty() || address.size() > kMaxMailbox || !valid_utf8(address)) return false;
  auto end = scan_local_part(address);
  if (end == std::string_view::npos || end >= address.size() || address[end] != '@') return false;
  return valid_domain(address.substr(end + 1));
}

bool has_non_ascii(std::string_view text) {
  for (char c : text)
    if (is_utf8_byte(c)) return true;
  return false;
}

std::string_view domain_of(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

}  // namespace mailhop::smtp
