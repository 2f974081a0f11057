// Reading a server's EHLO reply (RFC 5321 §4.1.1.1): which service extensions the next hop
// offers. Keywords match in any letter case; unknown ones are ignored.
#include "mailhop/smtp/extensions.hpp"

#include <algorithm>
#include <charconv>

#include "ascii.hpp"

namespace mailhop::smtp {
namespace {

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && ascii::is_wsp(s[i])) ++i;
    std::size_t start = i;
    while (i < s.size() && !ascii::is_wsp(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

void add_mechanism(Capabilities& caps, std::string_view mechanism) {
  if (mechanism.empty()) return;
  auto upper = ascii::to_upper(mechanism);
  if (std::find(caps.auth.begin(), caps.auth.end(), upper) == caps.auth.end()) caps.auth.push_back(std::move(upper));
}

}  // namespace

bool Capabilities::has_auth(std::string_view mechanism) const {
  return std::any_of(auth.begin(), auth.end(), [&](const std::string& m) { return ascii::iequals(m, mechanism); });
}

Capabilities parse_ehlo_reply(const Reply& reply) {
  Capabilities caps;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    auto words = split_words(reply.lines[i]);
    if (words.empty()) continue;
    auto keyword = ascii::to_upper(words[0]);
    if (keyword == "PIPELINING") caps.pipelining = true;
    else if (keyword == "STARTTLS") caps.starttls = true;
    else if (keyword == "8BITMIME") caps.eight_bit_mime = true;
    else if (keyword == "SMTPUTF8") caps.smtputf8 = true;
    else if (keyword == "ENHANCEDSTATUSCODES") caps.enhanced_status_codes = true;
    else if (keyword == "SIZE") {
      caps.size = true;
      // "SIZE 10240000"; "SIZE" or "SIZE 0" means no fixed limit (RFC 1870 §4).
      if (words.size() > 1) {
        std::uint64_t n = 0;
        auto w = words[1];
        auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
        if (ec == std::errc{} && end == w.data() + w.size()) caps.max_size = n;
      }
    } else if (keyword == "AUTH") {
      for (std::size_t k = 1; k < words.size(); ++k) add_mechanism(caps, words[k]);
    } else if (ascii::istarts_with(keyword, "AUTH=")) {
      // "AUTH=LOGIN PLAIN": the form from before RFC 2554 was final, still sent by old servers.
      add_mechanism(caps, words[0].substr(5));
      for (std::size_t k = 1; k < words.size(); ++k) add_mechanism(caps, words[k]);
    }
  }
  return caps;
}

}  // namespace mailhop::smtp
