// The effective configuration as YAML (`mailhop check`): every key, defaults filled in, in the
// order of config/mailhop.yaml, in a form that loads back into an equal Config.
//
// SECURITY: every string value passes through redact() with its key path, so a secret that a
// later source (environment overrides) puts into the Config is never printed; the paths and
// variable names that say where secrets come from are shown.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include "mailhop/config/loader.hpp"
#include "mailhop/config/redact.hpp"
#include "mailhop/util/units.hpp"

namespace mailhop::config {

bool is_secret_key(std::string_view key_path) {
  auto dot = key_path.rfind('.');
  auto name = dot == std::string_view::npos ? key_path : key_path.substr(dot + 1);
  // Where a secret comes from is not a secret.
  for (std::string_view suffix : {"_file", "_env", "_url", "_command"}) {
    if (name.ends_with(suffix)) return false;
  }
  constexpr std::array<std::string_view, 6> words = {"password", "secret", "token", "passphrase", "credential",
                                                     "api_key"};
  return std::any_of(words.begin(), words.end(), [&](std::string_view w) { return name.find(w) != name.npos; });
}

std::string redact(std::string_view key_path, std::string_view value) {
  return is_secret_key(key_path) ? std::string(redacted) : std::string(value);
}

namespace {

// A YAML emitter that knows the key path of each value, for redaction.
class Writer {
 public:
  explicit Writer(const Sources* sources) : sources_(sources) { out_.SetNullFormat(YAML::LowerNull); }

  // After a value: "# FILE:LINE" or "# MAILHOP_…" when `key_path` did not keep its default.
  void note(const std::string& key_path) {
    if (!sources_) return;
    if (auto it = sources_->find(key_path); it != sources_->end()) out_ << YAML::Comment(it->second);
  }

  void begin_map(std::string_view name) {
    out_ << YAML::Key << std::string(name) << YAML::Value << YAML::BeginMap;
    path_.emplace_back(name);
  }
  void end_map() {
    out_ << YAML::EndMap;
    path_.pop_back();
  }
  void string(std::string_view name, const std::string& value) {
    out_ << YAML::Key << std::string(name) << YAML::Value << redact(key(name), value);
    note(key(name));
  }
  void optional(std::string_view name, const std::optional<std::string>& value) {
    out_ << YAML::Key << std::string(name) << YAML::Value;
    if (value) {
      out_ << redact(key(name), *value);
    } else {
      out_ << YAML::Null;
    }
    note(key(name));
  }
  void number(std::string_view name, unsigned long long value) {
    out_ << YAML::Key << std::string(name) << YAML::Value << value;
    note(key(name));
  }
  void boolean(std::string_view name, bool value) {
    out_ << YAML::Key << std::string(name) << YAML::Value << (value ? "true" : "false");
    note(key(name));
  }
  void duration(std::string_view name, Duration d) { string(name, util::format_duration(d)); }
  void size(std::string_view name, std::uint64_t bytes) { string(name, util::format_size(bytes)); }
  void strings(std::string_view name, const std::vector<std::string>& values) {
    out_ << YAML::Key << std::string(name) << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : values) out_ << redact(key(name), v);
    out_ << YAML::EndSeq;
    note(key(name));
  }
  // The path of `name` in the current section ("relay.host"); "listen[0]." as a prefix for
  // the listeners, which are not a section.
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  YAML::Emitter& raw() { return out_; }
  std::string text() const { return out_.c_str(); }

 private:
  std::string key(std::string_view name) const {
    std::string k = prefix_;
    for (const auto& p : path_) k += p + ".";
    return k + std::string(name);
  }

  const Sources* sources_;
  YAML::Emitter out_;
  std::vector<std::string> path_;
  std::string prefix_;
};

std::vector<std::string> texts(const std::vector<Network>& networks) {
  std::vector<std::string> out;
  for (const auto& n : networks) out.push_back(n.text);
  return out;
}

void write_relay(Writer& w, const Relay& r) {
  w.begin_map("relay");
  w.string("host", r.host);
  w.number("port", r.port);
  w.string("tls", std::string(to_string(r.tls)));
  w.boolean("verify", r.verify);
  w.optional("ca_file", r.ca_file);
  w.optional("username", r.username);
  w.optional("password_file", r.password_file);
  w.optional("password_env", r.password_env);
  if (r.password) w.string("password", *r.password);  // only from MAILHOP_RELAY_PASSWORD; redacted
  w.string("auth", std::string(to_string(r.auth)));
  if (r.oauth2) {
    const auto& o = *r.oauth2;
    w.begin_map("oauth2");
    w.optional("token_url", o.token_url);
    w.optional("client_id", o.client_id);
    w.optional("client_secret_file", o.client_secret_file);
    w.optional("scope", o.scope);
    w.string("grant", std::string(to_string(o.grant)));
    w.optional("refresh_token_file", o.refresh_token_file);
    w.optional("ca_file", o.ca_file);
    w.optional("token_command", o.token_command);
    w.end_map();
  } else {
    w.optional("oauth2", std::nullopt);
  }
  std::vector<std::string> fallback;
  for (const auto& e : r.fallback) fallback.push_back(to_string(e));
  w.strings("fallback", fallback);
  w.begin_map("timeouts");
  w.duration("connect", r.timeouts.connect);
  w.duration("greeting", r.timeouts.greeting);
  w.duration("command", r.timeouts.command);
  w.duration("data_init", r.timeouts.data_init);
  w.duration("data_block", r.timeouts.data_block);
  w.duration("data_end", r.timeouts.data_end);
  w.duration("idle", r.timeouts.idle);
  w.end_map();
  w.end_map();
}

}  // namespace

namespace {

std::string describe_with(const Config& c, const Sources* sources) {
  Writer w(sources);
  w.raw() << YAML::BeginMap;
  w.string("hostname", c.hostname);
  w.number("threads", c.threads);

  w.raw() << YAML::Key << "listen" << YAML::Value << YAML::BeginSeq;
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    const auto& l = c.listen[i];
    w.set_prefix("listen[" + std::to_string(i) + "].");
    w.raw() << YAML::BeginMap;
    w.string("address", l.address);
    w.string("tls", std::string(to_string(l.tls)));
    w.string("auth", std::string(to_string(l.auth)));
    w.boolean("proxy_protocol", l.proxy_protocol);
    w.raw() << YAML::EndMap;
  }
  w.set_prefix("");
  w.raw() << YAML::EndSeq;
  w.strings("allowed_networks", texts(c.allowed_networks));
  w.strings("trusted_proxies", texts(c.trusted_proxies));

  w.begin_map("limits");
  w.size("max_message_size", c.limits.max_message_size);
  w.number("max_recipients", c.limits.max_recipients);
  w.number("max_connections", c.limits.max_connections);
  w.number("max_connections_per_ip", c.limits.max_connections_per_ip);
  w.number("max_errors", c.limits.max_errors);
  w.duration("command_timeout", c.limits.command_timeout);
  w.duration("data_timeout", c.limits.data_timeout);
  w.duration("session_timeout", c.limits.session_timeout);
  w.end_map();

  w.begin_map("spool");
  w.string("path", c.spool_path);
  w.end_map();

  w.begin_map("tls");
  w.optional("cert_file", c.tls.cert_file);
  w.optional("key_file", c.tls.key_file);
  w.end_map();

  w.begin_map("auth");
  w.optional("users_file", c.auth.users_file);
  w.end_map();

  write_relay(w, c.relay);

  w.begin_map("delivery");
  w.number("workers", c.delivery.workers);
  w.number("max_connections", c.delivery.max_connections);
  w.begin_map("retry");
  w.duration("initial", c.delivery.retry.initial);
  w.duration("max", c.delivery.retry.max);
  w.duration("give_up_after", c.delivery.retry.give_up_after);
  w.end_map();
  w.duration("shutdown_grace", c.delivery.shutdown_grace);
  w.end_map();

  w.begin_map("admin");
  w.string("listen", c.admin.listen);
  w.optional("token_file", c.admin.token_file);
  w.duration("readiness_window", c.admin.readiness_window);
  w.end_map();

  w.begin_map("log");
  w.string("level", c.log.level);
  w.string("format", std::string(to_string(c.log.format)));
  w.end_map();
  w.raw() << YAML::EndMap;

  std::string header = "# mailhop: effective configuration";
  if (!c.source.empty()) header += " from " + c.source;
  header += " (defaults filled in, secrets redacted)\n";
  if (sources) {
    header += c.source.empty() ? "# No configuration file: the defaults and the MAILHOP_* environment variables.\n" : "";
    header += "# After a value: where it came from (FILE:LINE, or the MAILHOP_* variable); no note: the default.\n";
  }
  return header + w.text() + "\n";
}

}  // namespace

std::string describe(const Config& c) { return describe_with(c, nullptr); }

std::string describe(const Config& c, const Sources& sources) { return describe_with(c, &sources); }

}  // namespace mailhop::config
