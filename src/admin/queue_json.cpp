// The JSON form of a queued message (see mailhop/admin/queue_json.hpp).
#include "mailhop/admin/queue_json.hpp"

#include <boost/json.hpp>

#include "mailhop/util/time.hpp"

namespace mailhop::admin {

namespace json = boost::json;

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && !(n == 2 && c < 0xC2);
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n == 3) {  // no overlong forms, no surrogates
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && n == 4) {  // no overlong forms, nothing beyond U+10FFFF
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

namespace {

json::value optional_string(const std::optional<std::string>& s) {
  if (!s) return nullptr;
  return json::string(valid_utf8(*s));
}

}  // namespace

json::object to_json(const spool::Envelope& e) {
  json::array recipients;
  for (const auto& r : e.recipients) {
    json::object o;
    o["address"] = valid_utf8(r.address);
    o["state"] = std::string(spool::to_string(r.state));
    o["last_reply"] = r.last_reply.empty() ? json::value(nullptr) : json::value(valid_utf8(r.last_reply));
    recipients.push_back(std::move(o));
  }
  json::object o;
  o["id"] = e.id.str();
  o["sender"] = valid_utf8(e.sender);
  o["recipients"] = std::move(recipients);
  o["size"] = e.size;
  o["arrival"] = util::rfc3339(e.arrival);
  o["attempts"] = e.attempts;
  o["next_attempt"] = util::rfc3339(e.next_attempt);
  o["last_error"] = optional_string(e.last_error);
  o["held"] = e.held;
  o["body"] = e.eight_bit ? "8BITMIME" : "7BIT";
  o["smtputf8"] = e.smtputf8;
  o["client_host"] = valid_utf8(e.client_host);
  o["client_ip"] = valid_utf8(e.client_ip);
  o["auth_user"] = optional_string(e.auth_user);
  return o;
}

json::array to_json(const std::vector<spool::Envelope>& queue) {
  json::array out;
  for (const auto& e : queue) out.push_back(to_json(e));
  return out;
}

}  // namespace mailhop::admin
