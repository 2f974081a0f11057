// Configuration from the environment (issue 5): every key can be set by MAILHOP_ + its path in
// upper case joined by _ (relay.host: MAILHOP_RELAY_HOST, delivery.retry.initial:
// MAILHOP_DELIVERY_RETRY_INITIAL). A variable wins over the file. The values are written into
// the YAML tree as text before schema.cpp reads it, so they are checked exactly as the file's
// values are; only the place in errors differs ("MAILHOP_RELAY_PORT: …" instead of FILE:LINE).
//
//   lists (allowed_networks, trusted_proxies, relay.fallback): comma-separated, "a, b"
//   MAILHOP_LISTEN: comma-separated "ADDRESS[ tls=MODE][ auth=MODE][ proxy_protocol=true]"
//   an empty variable: the key's "none" (null); for a list, the empty list
//   MAILHOP_RELAY_PASSWORD: relay.password, a secret that only the environment may give
//
// A MAILHOP_* variable that looks like a key (it starts with a section's or key's name, or is a
// near miss of a variable) but is none is an error, so a typo never passes silently. Not keys,
// and allowed: program_variables() (MAILHOP_CONFIG) and the variable relay.password_env names.
// Other MAILHOP_* names (MAILHOP_BIN of the test suite, say) are left alone.
//
// SECURITY: values come from whoever starts the process (trusted, but possibly wrong). Error
// messages never quote the value of a secret key (relay.password).
#include <algorithm>
#include <cctype>
#include <set>

#include "mailhop/config/redact.hpp"
#include "steps.hpp"

extern char** environ;

namespace mailhop::config {
namespace {

constexpr std::string_view prefix = "MAILHOP_";

enum class Kind { scalar, list, listen };

struct Key {
  std::string_view path;
  Kind kind = Kind::scalar;
};

// Every key a variable can set, in the order of config/mailhop.yaml. Keep in step with
// schema.cpp (a unit test compares this list with what describe() writes).
constexpr Key keys[] = {
    {"hostname"},
    {"threads"},
    {"listen", Kind::listen},
    {"allowed_networks", Kind::list},
    {"trusted_proxies", Kind::list},
    {"limits.max_message_size"},
    {"limits.max_recipients"},
    {"limits.max_connections"},
    {"limits.max_connections_per_ip"},
    {"limits.max_errors"},
    {"limits.command_timeout"},
    {"limits.data_timeout"},
    {"limits.session_timeout"},
    {"spool.path"},
    {"tls.cert_file"},
    {"tls.key_file"},
    {"auth.users_file"},
    {"relay.host"},
    {"relay.port"},
    {"relay.tls"},
    {"relay.verify"},
    {"relay.ca_file"},
    {"relay.username"},
    {"relay.password"},
    {"relay.password_file"},
    {"relay.password_env"},
    {"relay.auth"},
    {"relay.oauth2.token_url"},
    {"relay.oauth2.client_id"},
    {"relay.oauth2.client_secret_file"},
    {"relay.oauth2.scope"},
    {"relay.oauth2.grant"},
    {"relay.oauth2.refresh_token_file"},
    {"relay.oauth2.ca_file"},
    {"relay.oauth2.token_command"},
    {"relay.fallback", Kind::list},
    {"relay.timeouts.connect"},
    {"relay.timeouts.greeting"},
    {"relay.timeouts.command"},
    {"relay.timeouts.data_init"},
    {"relay.timeouts.data_block"},
    {"relay.timeouts.data_end"},
    {"relay.timeouts.idle"},
    {"delivery.workers"},
    {"delivery.max_connections"},
    {"delivery.retry.initial"},
    {"delivery.retry.max"},
    {"delivery.retry.give_up_after"},
    {"delivery.shutdown_grace"},
    {"admin.listen"},
    {"admin.token_file"},
    {"admin.readiness_window"},
    {"log.level"},
    {"log.format"},
};

const Key* find_key(std::string_view variable) {
  for (const auto& k : keys) {
    if (variable_name(k.path) == variable) return &k;
  }
  return nullptr;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    auto cut = s.find(sep);
    out.push_back(trim(s.substr(0, cut)));
    if (cut == std::string_view::npos) return out;
    s.remove_prefix(cut + 1);
  }
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    auto start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

void variable_error(detail::Diagnostics& d, const std::string& variable, std::string message) {
  d.errors.push_back(ConfigError{variable, 0, "", std::move(message)});
}

// "a, b,c" -> [a, b, c]; empty items (a trailing comma) are dropped.
YAML::Node list_node(std::string_view value) {
  YAML::Node seq(YAML::NodeType::Sequence);
  for (auto item : split(value, ',')) {
    if (!item.empty()) seq.push_back(std::string(item));
  }
  return seq;
}

// MAILHOP_LISTEN: "127.0.0.1:2525, 0.0.0.0:587 tls=starttls auth=required". Records each item
// and option in d.variables, so that describe() can say where they came from.
std::optional<YAML::Node> listen_node(std::string_view value, const std::string& variable, detail::Diagnostics& d) {
  YAML::Node seq(YAML::NodeType::Sequence);
  bool ok = true;
  std::size_t index = 0;
  for (auto item : split(value, ',')) {
    if (item.empty()) continue;
    auto path = "listen[" + std::to_string(index++) + "]";
    auto parts = words(item);
    YAML::Node listener(YAML::NodeType::Map);
    listener["address"] = std::string(parts.front());
    std::set<std::string_view> given;
    d.variables[path] = variable;
    d.variables[path + ".address"] = variable;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      auto eq = parts[i].find('=');
      auto name = parts[i].substr(0, eq);
      if (eq == std::string_view::npos || (name != "tls" && name != "auth" && name != "proxy_protocol")) {
        variable_error(d, variable,
                       path + " (" + quoted(item) + "): " + quoted(parts[i]) +
                           " is not an option; write ADDRESS[ tls=MODE][ auth=MODE][ proxy_protocol=true]" +
                           detail::suggestion(name, {"tls", "auth", "proxy_protocol"}));
        ok = false;
        continue;
      }
      if (!given.insert(name).second) {
        variable_error(d, variable, path + " (" + quoted(item) + "): " + std::string(name) + " is given twice");
        ok = false;
        continue;
      }
      listener[std::string(name)] = std::string(parts[i].substr(eq + 1));
      d.variables[path + "." + std::string(name)] = variable;
    }
    seq.push_back(listener);
  }
  if (!ok) return std::nullopt;
  return seq;
}

// Writes `value` at `path` ("relay.oauth2.client_id") in the mapping `root`, making missing or
// empty sections mappings. false when a section in the way is something else (the file's
// error about it is reported by the schema).
bool set_path(YAML::Node root, std::string_view path, const YAML::Node& value) {
  YAML::Node node = root;
  while (true) {
    auto dot = path.find('.');
    std::string name(path.substr(0, dot));
    if (dot == std::string_view::npos) {
      node[name] = value;
      return true;
    }
    YAML::Node child = node[name];
    if (!child.IsDefined() || child.IsNull()) {
      node[name] = YAML::Node(YAML::NodeType::Map);
      child = node[name];
    } else if (!child.IsMap()) {
      return false;
    }
    node.reset(child);
    path.remove_prefix(dot + 1);
  }
}

// True when `rest` (a variable without MAILHOP_) starts like a key: a section or a top-level
// key's name followed by _ or nothing (RELAY_HOTS, LIMITS, SPOOL_DIR).
bool starts_like_a_key(std::string_view rest) {
  for (const auto& k : keys) {
    auto first = variable_name(k.path.substr(0, k.path.find('.'))).substr(prefix.size());
    if (rest == first || (rest.starts_with(first) && rest.size() > first.size() && rest[first.size()] == '_')) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string variable_name(std::string_view key_path) {
  std::string out(prefix);
  for (char c : key_path) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const std::vector<std::string>& environment_keys() {
  static const std::vector<std::string> list = [] {
    std::vector<std::string> out;
    for (const auto& k : keys) out.emplace_back(k.path);
    return out;
  }();
  return list;
}

const std::vector<std::string>& program_variables() {
  static const std::vector<std::string> list = {"MAILHOP_CONFIG"};
  return list;
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

namespace detail {

void apply_environment(YAML::Node& root, const Environment& env, Diagnostics& d) {
  bool any = std::any_of(env.begin(), env.end(), [](const auto& v) { return find_key(v.first) != nullptr; });
  if (!any) return;
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return;  // the file is not a mapping: reported by the schema
  for (const auto& [variable, value] : env) {
    const Key* key = find_key(variable);
    if (!key) continue;
    YAML::Node node;
    switch (key->kind) {
      case Kind::scalar:
        node = value.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Node(value);
        break;
      case Kind::list:
        node = list_node(value);
        break;
      case Kind::listen: {
        auto listen = listen_node(value, variable, d);
        if (!listen) continue;
        node = *listen;
        break;
      }
    }
    std::string path(key->path);
    if (set_path(root, path, node)) d.variables[path] = variable;
  }
}

void check_variables(const Environment& env, const Config& config, Diagnostics& d) {
  const auto& own = program_variables();
  std::vector<std::string> known;
  for (const auto& k : keys) known.push_back(variable_name(k.path).substr(prefix.size()));
  for (const auto& [variable, value] : env) {
    if (!variable.starts_with(prefix) || find_key(variable)) continue;
    if (std::find(own.begin(), own.end(), variable) != own.end()) continue;
    if (config.relay.password_env && *config.relay.password_env == variable) continue;
    auto rest = std::string_view(variable).substr(prefix.size());
    auto hint = suggestion(rest, known);
    if (!starts_like_a_key(rest) && hint.empty()) continue;  // not meant for the configuration
    if (!hint.empty()) hint = " (did you mean MAILHOP_" + hint.substr(std::string(" (did you mean ").size());
    variable_error(d, variable,
                   "is not a configuration key" + hint +
                       "; a variable MAILHOP_<KEY> sets the key of that path, e.g. MAILHOP_RELAY_HOST for relay.host");
  }
}

void attribute_to_variables(Diagnostics& d) {
  auto attribute = [&](ConfigError& e) {
    auto variable = d.variable_of(e.key);
    if (variable.empty()) return;
    e.file = variable;
    e.line = 0;
    // "MAILHOP_RELAY_PORT: "x" is not a port": the variable names the key already.
    if (variable == variable_name(e.key)) e.key.clear();
  };
  for (auto& e : d.errors) attribute(e);
  for (auto& w : d.warnings) attribute(w);
}

}  // namespace detail
}  // namespace mailhop::config
