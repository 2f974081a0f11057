// SMTP command parsing (RFC 5321 §4.1), lenient where Postfix is lenient by default.
//
// SECURITY: `line` is untrusted. Nothing is executed here; an HTTP request line is recognised
// so the session can close the connection (cross-protocol attacks, as Postfix's
// smtpd_forbidden_commands). Addresses pass is_valid_mailbox(), so no control character, space
// or angle bracket reaches an envelope.
#include "mailhop/smtp/command.hpp"

#include <array>

#include "ascii.hpp"
#include "mailhop/smtp/address.hpp"

namespace mailhop::smtp {
namespace {

struct VerbName {
  std::string_view name;
  Verb verb;
};

constexpr std::array kVerbs{
    VerbName{"HELO", Verb::helo}, VerbName{"EHLO", Verb::ehlo},         VerbName{"MAIL", Verb::mail},
    VerbName{"RCPT", Verb::rcpt}, VerbName{"DATA", Verb::data},         VerbName{"BDAT", Verb::bdat},
    VerbName{"RSET", Verb::rset}, VerbName{"NOOP", Verb::noop},         VerbName{"QUIT", Verb::quit},
    VerbName{"VRFY", Verb::vrfy}, VerbName{"EXPN", Verb::expn},         VerbName{"HELP", Verb::help},
    VerbName{"AUTH", Verb::auth}, VerbName{"STARTTLS", Verb::starttls},
};

constexpr std::array<std::string_view, 7> kHttpMethods{"GET", "POST", "HEAD", "PUT", "CONNECT",
                                                      "OPTIONS", "DELETE"};

// "GET / HTTP/1.1", "CONNECT host:443 HTTP/1.0", or anything ending in " HTTP/1.x".
bool is_http_request(std::string_view line) {
  for (auto method : kHttpMethods)
    if (line.size() > method.size() && ascii::istarts_with(line, method) && line[method.size()] == ' ')
      return true;
  constexpr std::string_view kVersion = " HTTP/1.";
  return line.size() > kVersion.size() + 1 &&
         ascii::iequals(line.substr(line.size() - kVersion.size() - 1, kVersion.size()), kVersion) &&
         ascii::is_digit(line.back());
}

// The end of a path token: the '>' closing "<…" (or npos), or the first white space of an
// unbracketed one. Quoted local parts may hold '>' and spaces, so quotes are honoured.
std::size_t path_end(std::string_view s, bool bracketed) {
  bool quoted = false;
  for (std::size_t i = bracketed ? 1 : 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (bracketed ? c == '>' : ascii::is_wsp(c)) {
      return i;
    }
  }
  return bracketed ? std::string_view::npos : s.size();
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")   (RFC 5321 §4.1.2)
bool valid_keyword(std::string_view k) {
  if (k.empty() || !(ascii::is_alpha(k[0]) || ascii::is_digit(k[0]))) return false;
  for (char c : k)
    if (!ascii::is_alpha(c) && !ascii::is_digit(c) && c != '-') return false;
  return true;
}

// esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3).
bool valid_value(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u == '=' || u == 127) return false;
  }
  return true;
}

bool all_digits(std::string_view v) {
  if (v.empty() || v.size() > 19) return false;  // fits in uint64
  for (char c : v)
    if (!ascii::is_digit(c)) return false;
  return true;
}

// Checks the values of the parameters mailhop knows; the others are left to the session.
std::string check_known_param(const std::string& keyword, const std::string& value) {
  if (keyword == "SIZE" && !all_digits(value)) return "Bad SIZE= parameter: a number of bytes is expected";
  if (keyword == "BODY" && !ascii::iequals(value, "7BIT") && !ascii::iequals(value, "8BITMIME"))
    return "Unsupported BODY= parameter: 7BIT or 8BITMIME expected";
  if (keyword == "SMTPUTF8" && !value.empty()) return "SMTPUTF8 takes no value";
  return {};
}

PathParse fail(std::string error) {
  PathParse r;
  r.error = std::move(error);
  return r;
}

PathParse parse_path(std::string_view argument, std::string_view keyword, bool mail) {
  const std::string syntax = mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>";
  auto s = ascii::trim_wsp(argument);
  if (!ascii::istarts_with(s, keyword)) return fail(syntax);
  s = ascii::trim_wsp(s.substr(keyword.size()));  // "FROM: <a@b>" is common (Postfix accepts it)
  if (s.empty()) return fail(syntax);

  std::string_view path, rest;
  if (s.front() == '<') {
    auto end = path_end(s, true);
    if (end == std::string_view::npos) return fail(syntax);
    path = ascii::trim_wsp(s.substr(1, end - 1));
    rest = s.substr(end + 1);
    if (!rest.empty() && !ascii::is_wsp(rest.front())) return fail(syntax);  // "<a@b>SIZE=1"
  } else {
    // No angle brackets, as in the Java client's "MAIL FROM: user@host " (strict_rfc821_envelopes=no).
    auto end = path_end(s, false);
    path = s.substr(0, end);
    rest = s.substr(end);
  }

  // A source route "@a,@b:user@c" is obsolete; it must be accepted and the route ignored
  // (RFC 5321 §4.1.1.3, Appendix C).
  if (!path.empty() && path.front() == '@') {
    auto colon = path.find(':');
    if (colon == std::string_view::npos) return fail(syntax);
    path.remove_prefix(colon + 1);
  }

  PathArgument result;
  if (path.empty()) {
    if (!mail) return fail("Syntax: RCPT TO:<address>: a recipient address is required");
    // The null reverse-path <> (§4.5.5): bounces and other notifications.
  } else if (!mail && ascii::iequals(path, "postmaster")) {
    // RFC 5321 §4.5.1: "RCPT TO:<Postmaster>" without a domain must be accepted.
  } else if (!is_valid_mailbox(path)) {
    return fail(mail ? "Bad sender address syntax" : "Bad recipient address syntax");
  }
  result.address = std::string(path);

  rest = ascii::trim_wsp(rest);
  while (!rest.empty()) {
    std::size_t end = 0;
    while (end < rest.size() && !ascii::is_wsp(rest[end])) ++end;
    auto token = rest.substr(0, end);
    rest = ascii::trim_wsp(rest.substr(end));
    auto eq = token.find('=');
    auto keyword_text = token.substr(0, eq);
    if (!valid_keyword(keyword_text)) return fail("Bad ESMTP parameter syntax");
    std::string value;
    if (eq != std::string_view::npos) {
      if (!valid_value(token.substr(eq + 1))) return fail("Bad ESMTP parameter syntax");
      value = std::string(token.substr(eq + 1));
    }
    auto keyword_upper = ascii::to_upper(keyword_text);
    if (auto error = check_known_param(keyword_upper, value); !error.empty()) return fail(error);
    result.params.emplace_back(std::move(keyword_upper), std::move(value));
  }
  PathParse r;
  r.path = std::move(result);
  return r;
}

}  // namespace

Command parse_command(std::string_view line) {
  line = ascii::trim_wsp(line);
  Command cmd;
  std::size_t end = 0;
  while (end < line.size() && !ascii::is_wsp(line[end])) ++end;
  cmd.name = ascii::to_upper(line.substr(0, end));
  cmd.argument = std::string(ascii::trim_wsp(line.substr(end)));
  if (is_http_request(line)) {
    cmd.verb = Verb::http;
    return cmd;
  }
  for (const auto& v : kVerbs)
    if (cmd.name == v.name) {
      cmd.verb = v.verb;
      break;
    }
  return cmd;
}

const std::string* PathArgument::param(std::string_view keyword) const {
  for (const auto& [k, v] : params)
    if (ascii::iequals(k, keyword)) return &v;
  return nullptr;
}

PathParse parse_mail_argument(std::string_view argument) { return parse_path(argument, "FROM:", true); }
PathParse parse_rcpt_argument(std::string_view argument) { return parse_path(argument, "TO:", false); }

}  // namespace mailhop::smtp
