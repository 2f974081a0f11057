// Formatting of the server's replies.
#include "mailhop/server/response.hpp"

#include "mailhop/smtp/reply.hpp"

namespace mailhop::server {

std::string Response::wire() const {
  if (more.empty()) return smtp::format_reply(code, enhanced, text);
  std::vector<std::string> lines;
  lines.reserve(more.size() + 1);
  auto with_code = [this](const std::string& line) { return enhanced.empty() ? line : enhanced + " " + line; };
  lines.push_back(with_code(text));
  for (const auto& line : more) lines.push_back(with_code(line));
  return smtp::format_multiline(code, lines);
}

}  // namespace mailhop::server
