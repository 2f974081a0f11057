// The OAuth2 token request over HTTPS (RFC 6749 §4.1.3 refresh / §6, §4.4 client credentials)
// with Boost.Beast, and the pieces around it: the form body (Boost.URL percent-encoding), the
// answer (Boost.JSON), secret files and the atomic write-back of a rotated refresh token.
// This is the only delivery file that includes Beast (compile cost, TOOLCHAIN.md).
//
// SECURITY: the token endpoint's answer is untrusted: its size is bounded (64 KiB), the JSON is
// parsed by Boost.JSON and only string/number fields of the expected types are taken. The
// endpoint's certificate and host name are always verified (relay.verify does not apply here).
// Secrets (client secret, refresh token) travel only in the request body; tokens and secrets
// are never put in an error text or a log line.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mailhop/delivery/token_provider.hpp"
#include "mailhop/tls/client.hpp"

namespace mailhop::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
namespace urls = boost::urls;
using asio::awaitable;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxResponse = 64 * 1024;
constexpr std::size_t kMaxErrorText = 200;

std::string form_encode(std::string_view s) { return urls::encode(s, urls::unreserved_chars); }

// Printable ASCII only, shortened: the endpoint's error text goes into last_error.
std::string clean(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= kMaxErrorText) {
      out += "…";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  return out;
}

std::optional<std::chrono::seconds> as_seconds(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64() && v->as_int64() > 0) return std::chrono::seconds(v->as_int64());
  if (v->is_uint64()) return std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), 1u << 30)));
  if (v->is_double() && v->as_double() > 0) return std::chrono::seconds(static_cast<std::int64_t>(v->as_double()));
  if (v->is_string()) {  // some endpoints (older Azure AD) send "3599"
    try {
      auto n = std::stoll(std::string(v->as_string()));
      if (n > 0) return std::chrono::seconds(n);
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> read_secret_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string value = buf.str();
  if (value.ends_with('\n')) value.pop_back();
  if (value.ends_with('\r')) value.pop_back();
  return value;
}

std::string write_secret_file(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  mode_t mode = 0600;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;
  std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return "cannot create a temporary file next to " + path + ": " + std::strerror(errno);
  auto fail = [&](const char* what) {
    std::string why = std::string("cannot ") + what + " " + tmp + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return why;
  };
  if (::fchmod(fd, mode) != 0) return fail("set the mode of");
  std::string data = content + "\n";
  for (std::size_t done = 0; done < data.size();) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    std::string why = "cannot close " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return why;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return why;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::optional<std::string> token_request_body(const config::OAuth2& o, std::string& error) {
  const bool refresh = o.grant == config::OAuth2Grant::refresh_token;
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("grant_type", refresh ? "refresh_token" : "client_credentials");
  fields.emplace_back("client_id", o.client_id.value_or(""));
  if (o.client_secret_file) {
    auto secret = read_secret_file(*o.client_secret_file, error);
    if (!secret) {
      error = "relay.oauth2.client_secret_file: " + error;
      return std::nullopt;
    }
    fields.emplace_back("client_secret", *secret);
  }
  if (refresh) {
    if (!o.refresh_token_file) {
      error = "relay.oauth2.refresh_token_file is not set";
      return std::nullopt;
    }
    auto token = read_secret_file(*o.refresh_token_file, error);
    if (!token) {
      error = "relay.oauth2.refresh_token_file: " + error;
      return std::nullopt;
    }
    if (token->empty()) {
      error = "relay.oauth2.refresh_token_file " + *o.refresh_token_file + " is empty";
      return std::nullopt;
    }
    fields.emplace_back("refresh_token", *token);
  }
  if (o.scope) fields.emplace_back("scope", *o.scope);
  std::string body;
  for (const auto& [k, v] : fields) body += (body.empty() ? "" : "&") + form_encode(k) + "=" + form_encode(v);
  return body;
}

FetchResult parse_token_response(unsigned status, const std::string& body, const std::string& where) {
  FetchResult r;
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  const json::object* obj = (!ec && doc.is_object()) ? &doc.as_object() : nullptr;
  auto text = [&](std::string_view key) -> std::string {
    const json::value* v = obj ? obj->if_contains(key) : nullptr;
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  if (status != 200) {
    // RFC 6749 §5.2: {"error": "invalid_grant", "error_description": "…"}
    r.error = fmt::format("{} answered HTTP {}", where, status);
    if (auto code = text("error"); !code.empty()) {
      r.error += ": " + clean(code);
      if (auto description = text("error_description"); !description.empty()) r.error += " (" + clean(description) + ")";
    }
    return r;
  }
  if (!obj) {
    r.error = fmt::format("{} answered HTTP 200 without a JSON object{}", where, ec ? ": " + ec.message() : "");
    return r;
  }
  auto access = text("access_token");
  if (access.empty()) {
    r.error = fmt::format("{} answered HTTP 200 without an access_token", where);
    return r;
  }
  if (auto type = text("token_type"); !type.empty() && !beast::iequals(type, "bearer")) {
    r.error = fmt::format("{} returned a token of type {}, not Bearer", where, clean(type));
    return r;
  }
  TokenResponse t;
  t.access_token = std::move(access);
  t.expires_in = as_seconds(obj->if_contains("expires_in"));
  if (auto refresh = text("refresh_token"); !refresh.empty()) t.refresh_token = std::move(refresh);
  r.token = std::move(t);
  return r;
}

awaitable<FetchResult> fetch_from_endpoint(asio::any_io_executor ex, config::Relay relay) {
  FetchResult r;
  const auto& o = *relay.oauth2;
  const std::string url = o.token_url.value_or("");
  const std::string where = "token endpoint " + url;
  auto parsed = urls::parse_absolute_uri(url);
  if (!parsed || parsed->scheme_id() != urls::scheme::https || parsed->host().empty()) {
    r.error = "relay.oauth2.token_url " + url + " is not an https:// URL";
    co_return r;
  }
  std::string host = parsed->host_address();
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : "443";
  std::string target(parsed->encoded_target());
  if (target.empty()) target = "/";

  std::string why;
  auto body = token_request_body(o, why);
  if (!body) {
    r.error = why;
    co_return r;
  }

  // The token endpoint is always verified, against oauth2.ca_file, relay.ca_file or the system store.
  std::shared_ptr<ssl::context> ctx;
  try {
    config::Relay for_endpoint;
    for_endpoint.verify = true;
    for_endpoint.ca_file = o.ca_file ? o.ca_file : relay.ca_file;
    ctx = tls::make_client_context(for_endpoint);
  } catch (const std::exception& e) {
    r.error = e.what();
    co_return r;
  }

  beast::ssl_stream<beast::tcp_stream> stream(ex, *ctx);
  auto& tcp = beast::get_lowest_layer(stream);
  tcp.expires_after(TokenProvider::kRequestTimeout);
  asio::ip::tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(host, port, use_tuple);
  if (rec) {
    r.error = fmt::format("{}: cannot resolve {}: {}", where, host, rec.message());
    co_return r;
  }
  auto [cec, peer] = co_await tcp.async_connect(results, use_tuple);
  if (cec) {
    r.error = fmt::format("{}: cannot connect: {}", where,
                          cec == beast::error::timeout ? std::string("timed out") : cec.message());
    co_return r;
  }
  if (!tls::prepare_client_connection(stream.native_handle(), host, true)) {
    r.error = fmt::format("{}: cannot set up TLS for the name {}", where, host);
    co_return r;
  }
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
  if (hec) {
    r.error = fmt::format("{}: {}", where, tls::describe_handshake_error(stream.native_handle(), hec.message()));
    co_return r;
  }

  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, parsed->has_port() ? host + ":" + port : host);
  req.set(http::field::user_agent, "mailhop");
  req.set(http::field::accept, "application/json");
  req.set(http::field::content_type, "application/x-www-form-urlencoded");
  req.set(http::field::connection, "close");
  req.body() = std::move(*body);
  req.prepare_payload();
  auto [wec, written] = co_await http::async_write(stream, req, use_tuple);
  if (wec) {
    r.error = fmt::format("{}: sending the request failed: {}", where, wec.message());
    co_return r;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponse);
  parser.header_limit(16 * 1024);
  auto [rdec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
  if (rdec) {
    r.error = fmt::format("{}: reading the answer failed: {}", where,
                          rdec == beast::error::timeout ? std::string("timed out") : rdec.message());
    co_return r;
  }
  // Closing: the answer is complete; the TLS shutdown's outcome does not matter.
  boost::system::error_code ignored;
  tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);

  const auto& res = parser.get();
  r = parse_token_response(res.result_int(), res.body(), where);
  // RFC 6749 §6: the endpoint may issue a new refresh token; the old one may stop working.
  if (r.token && r.token->refresh_token && o.grant == config::OAuth2Grant::refresh_token && o.refresh_token_file) {
    std::string current;
    auto old = read_secret_file(*o.refresh_token_file, current);
    if (!old || *old != *r.token->refresh_token) {
      if (auto err = write_secret_file(*o.refresh_token_file, *r.token->refresh_token); !err.empty())
        spdlog::error("oauth2: the token endpoint rotated the refresh token but it cannot be saved: {}", err);
      else
        spdlog::info("oauth2: saved the rotated refresh token to {}", *o.refresh_token_file);
    }
  }
  co_return r;
}

}  // namespace mailhop::delivery
