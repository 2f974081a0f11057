// Fuzz target: the server's command input (smtp/line_buffer.hpp, smtp/command.hpp). The input is
// a client's byte stream: it is split into lines by a LineBuffer (whole, and a byte at a time),
// each line parsed as a command, and the arguments of MAIL and RCPT parsed as paths.
//
// Invariants:
// - the lines do not depend on how the stream is split, never hold a LF, and respect the bound;
// - the verb name is upper case and holds no white space; the argument has none around it;
// - an HTTP request line is recognised whatever it follows;
// - an accepted MAIL/RCPT address is a valid mailbox (or the null path, for MAIL only, or
//   "Postmaster" in any letter case, for RCPT only: RFC 5321 §4.5.1): no control character or
//   angle bracket reaches an envelope; parameter keywords are upper case.
#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"
#include "mailhop/smtp/address.hpp"
#include "mailhop/smtp/command.hpp"
#include "mailhop/smtp/line_buffer.hpp"

using namespace mailhop::smtp;

namespace {

constexpr std::size_t kMaxLine = 512;

std::vector<Line> lines_of(std::string_view input, std::size_t step) {
  LineBuffer buffer(kMaxLine);
  std::vector<Line> lines;
  for (std::size_t pos = 0; pos < input.size(); pos += step) {
    buffer.append(input.substr(pos, step));
    while (auto line = buffer.pop_line()) lines.push_back(std::move(*line));
  }
  return lines;
}

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

bool is_postmaster(std::string_view a) {
  constexpr std::string_view name = "postmaster";
  if (a.size() != name.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != name[i]) return false;
  }
  return true;
}

void check_path(const PathParse& p, bool mail) {
  if (!p.path) {
    FUZZ_CHECK(!p.error.empty());
    return;
  }
  const auto& a = p.path->address;
  if (a.empty()) FUZZ_CHECK(mail);
  else if (a.find('@') == std::string::npos) FUZZ_CHECK(!mail && is_postmaster(a));
  else FUZZ_CHECK(is_valid_mailbox(a));
  for (char c : a) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
  // Angle brackets only inside a quoted local part ("a>b"@example.org).
  if (a.find_first_of("<>") != std::string::npos) FUZZ_CHECK(a.front() == '"');
  for (const auto& [keyword, value] : p.path->params) {
    FUZZ_CHECK(!keyword.empty());
    for (char c : keyword) FUZZ_CHECK(!(c >= 'a' && c <= 'z') && !is_wsp(c));
    for (char c : value) FUZZ_CHECK(!is_wsp(c) && c != '\r' && c != '\n');
    FUZZ_CHECK(p.path->param(keyword) != nullptr);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto lines = lines_of(input, input.size() + 1);
  auto bytewise = lines_of(input, 1);
  FUZZ_CHECK(lines.size() == bytewise.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    FUZZ_CHECK(lines[i].text == bytewise[i].text && lines[i].too_long == bytewise[i].too_long);
    FUZZ_CHECK(lines[i].text.size() <= kMaxLine);
    FUZZ_CHECK(lines[i].text.find('\n') == std::string::npos);
    if (lines[i].too_long) FUZZ_CHECK(lines[i].text.empty());
  }

  // Every line as a command; the whole input too, as if it were one line.
  lines.push_back(Line{std::string(input), false});
  for (const auto& line : lines) {
    auto cmd = parse_command(line.text);
    for (char c : cmd.name) FUZZ_CHECK(!(c >= 'a' && c <= 'z') && !is_wsp(c));
    if (!cmd.argument.empty()) FUZZ_CHECK(!is_wsp(cmd.argument.front()) && !is_wsp(cmd.argument.back()));
    if (cmd.verb == Verb::http) FUZZ_CHECK(parse_command("  " + line.text + "\t").verb == Verb::http);
    check_path(parse_mail_argument(cmd.argument), true);
    check_path(parse_rcpt_argument(cmd.argument), false);
  }
  return 0;
}
