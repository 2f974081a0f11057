// Typed reading of the YAML tree with error collection (see reader.hpp).
#include "reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "mailhop/util/units.hpp"

namespace mailhop::config::detail {
namespace {

// yaml-cpp marks count from 0; errors count from 1. A node without a place has line -1.
int line_of_mark(const YAML::Mark& m, int fallback) { return m.line >= 0 ? m.line + 1 : fallback; }

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string kind(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsScalar()) return "the value " + quoted(n.Scalar());
  return "empty";
}

// Edits (insert, delete, replace, swap two neighbours) from a to b, ignoring case.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

void Diagnostics::error(int line, std::string key, std::string message) {
  errors.push_back(ConfigError{file, line, std::move(key), std::move(message)});
}

void Diagnostics::warning(int line, std::string key, std::string message) {
  warnings.push_back(ConfigError{file, line, std::move(key), std::move(message)});
}

int Diagnostics::line_of(std::string_view key) const {
  while (!key.empty()) {
    if (auto it = lines.find(key); it != lines.end()) return it->second;
    auto cut = key.find_last_of(".[");
    if (cut == std::string_view::npos) break;
    key = key.substr(0, cut);
  }
  return 0;
}

std::string Diagnostics::variable_of(std::string_view key) const {
  while (!key.empty()) {
    if (auto it = variables.find(key); it != variables.end()) return it->second;
    auto cut = key.find_last_of(".[");
    if (cut == std::string_view::npos) break;
    key = key.substr(0, cut);
  }
  return "";
}

std::string suggestion(std::string_view word, const std::vector<std::string>& options) {
  std::string best;
  std::size_t best_distance = 3;  // at most two edits
  for (const auto& option : options) {
    auto distance = edit_distance(word, option);
    if (distance < best_distance && distance < std::max<std::size_t>(option.size() / 2, 1) + 1) {
      best = option;
      best_distance = distance;
    }
  }
  return best.empty() ? "" : " (did you mean " + best + "?)";
}

MapReader::MapReader(Diagnostics& d, const YAML::Node& node, std::string path, int line)
    : d_(d), node_(node), path_(std::move(path)) {
  if (!node.IsDefined() || node.IsNull()) return;  // an empty section: every key at its default
  if (!node.IsMap()) {
    d_.error(line, path_.empty() ? "(top level)" : path_,
             "must be a mapping of keys (key: value), not " + kind(node));
    return;
  }
  ok_ = true;
  // Duplicate keys: yaml-cpp keeps both; the second would silently lose.
  std::map<std::string, int, std::less<>> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    int key_line = line_of_mark(it->first.Mark(), line);
    if (!it->first.IsScalar()) {
      d_.error(key_line, path_.empty() ? "(top level)" : path_, "keys must be plain names");
      continue;
    }
    auto [where, fresh] = seen.emplace(it->first.Scalar(), key_line);
    if (!fresh) {
      auto key = path_.empty() ? it->first.Scalar() : path_ + "." + it->first.Scalar();
      d_.error(key_line, key, "appears twice (first on line " + std::to_string(where->second) + ")");
    }
  }
}

std::optional<Field> MapReader::get(std::string_view key) {
  known_.emplace_back(key);
  if (!ok_) return std::nullopt;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) {
      Field f{it->second, path_.empty() ? std::string(key) : path_ + "." + std::string(key),
              line_of_mark(it->first.Mark(), 0)};
      d_.lines.emplace(f.path, f.line);
      return f;
    }
  }
  return std::nullopt;
}

void MapReader::finish() {
  if (!ok_) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    const auto& key = it->first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    d_.error(line_of_mark(it->first.Mark(), 0), path_.empty() ? key : path_ + "." + key,
             "unknown key" + suggestion(key, known_));
  }
}

std::vector<Field> list_items(Diagnostics& d, const Field& f, std::string_view example) {
  std::vector<Field> items;
  if (f.node.IsNull()) return items;
  if (!f.node.IsSequence()) {
    d.error(f.line, f.path, "must be a list, e.g. " + std::string(example));
    return items;
  }
  std::size_t i = 0;
  for (const auto& item : f.node) {
    // An empty item ("-" alone) has no place of its own in yaml-cpp: use the list's line.
    int line = item.IsNull() ? f.line : line_of_mark(item.Mark(), f.line);
    Field field{item, f.path + "[" + std::to_string(i++) + "]", line};
    d.lines.emplace(field.path, field.line);
    items.push_back(std::move(field));
  }
  return items;
}

namespace {

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c < 0x80) n = 0;
    else if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) n = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) n = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    if (s.size() - i - 1 < n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

std::optional<std::string> scalar(Diagnostics& d, const Field& f) {
  if (f.node.IsScalar()) {
    // A YAML file is Unicode text (YAML 1.2 §5.2); a stray byte would not survive `mailhop
    // check`'s output (written back as U+FFFD), so it is refused here, where it can be named.
    if (!valid_utf8(f.node.Scalar())) {
      d.error(f.line, f.path, "is not valid UTF-8 text (save the file as UTF-8)");
      return std::nullopt;
    }
    return f.node.Scalar();
  }
  d.error(f.line, f.path, f.node.IsNull() ? "needs a value" : "must be a single value, not " + kind(f.node));
  return std::nullopt;
}

bool read_string(Diagnostics& d, const Field& f, std::string& out) {
  auto text = scalar(d, f);
  if (!text) return false;
  out = *text;
  return true;
}

bool read_optional_string(Diagnostics& d, const Field& f, std::optional<std::string>& out) {
  if (f.node.IsNull()) {
    out.reset();
    return true;
  }
  auto text = scalar(d, f);
  if (!text) return false;
  if (text->empty()) {
    d.error(f.line, f.path, "is empty (write null, or leave the key out, for none)");
    return false;
  }
  out = *text;
  return true;
}

bool read_bool(Diagnostics& d, const Field& f, bool& out) {
  auto text = scalar(d, f);
  if (!text) return false;
  std::string lower = *text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "true" || lower == "yes" || lower == "on") {
    out = true;
    return true;
  }
  if (lower == "false" || lower == "no" || lower == "off") {
    out = false;
    return true;
  }
  d.error(f.line, f.path, quoted(*text) + " is not true or false");
  return false;
}

bool read_unsigned(Diagnostics& d, const Field& f, unsigned& out, unsigned min, unsigned max) {
  auto text = scalar(d, f);
  if (!text) return false;
  unsigned long long value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || end != text->data() + text->size() || ec == std::errc::invalid_argument) {
    d.error(f.line, f.path, quoted(*text) + " is not a whole number");
    return false;
  }
  if (ec == std::errc::result_out_of_range || value > max) {
    d.error(f.line, f.path, quoted(*text) + " is too large (at most " + std::to_string(max) + ")");
    return false;
  }
  if (value < min) {
    d.error(f.line, f.path, quoted(*text) + " is too small (at least " + std::to_string(min) + ")");
    return false;
  }
  out = static_cast<unsigned>(value);
  return true;
}

bool read_port(Diagnostics& d, const Field& f, std::uint16_t& out) {
  auto text = scalar(d, f);
  if (!text) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size() || value < 1 || value > 65535) {
    d.error(f.line, f.path, quoted(*text) + " is not a port (use a number from 1 to 65535)");
    return false;
  }
  out = static_cast<std::uint16_t>(value);
  return true;
}

bool read_size(Diagnostics& d, const Field& f, std::uint64_t& out) {
  auto text = scalar(d, f);
  if (!text) return false;
  auto value = util::parse_size(*text);
  if (!value) {
    d.error(f.line, f.path, quoted(*text) + " is not a size (use e.g. 25MiB)");
    return false;
  }
  if (*value == 0) {
    d.error(f.line, f.path, "must be larger than 0");
    return false;
  }
  out = *value;
  return true;
}

bool read_duration(Diagnostics& d, const Field& f, std::chrono::milliseconds& out) {
  auto text = scalar(d, f);
  if (!text) return false;
  auto value = util::parse_duration(*text);
  if (!value) {
    d.error(f.line, f.path, quoted(*text) + " is not a duration (use e.g. 500ms, 30s, 5m, 1h, 5d)");
    return false;
  }
  if (value->count() == 0) {
    d.error(f.line, f.path, "must be longer than 0");
    return false;
  }
  out = *value;
  return true;
}

bool is_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    auto label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace mailhop::config::detail
