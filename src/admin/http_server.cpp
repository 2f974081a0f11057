// The admin HTTP server: accept loop and one session coroutine per connection, in the shape of
// Beast's advanced server-flex-awaitable example (without TLS: loopback, or behind a token).
// Routing and handlers are in routes.cpp; this file translates HTTP to them and back.
//
// SECURITY: every byte here comes from the network. Bounds are set where input enters
// (header_limit, body_limit, one deadline per request that a trickle does not extend, a cap on
// concurrent connections); a request that does not parse closes the connection; the bearer
// token is compared in constant time (CRYPTO_memcmp of SHA-256 digests, so neither content
// nor length leaks through timing).
#include "mailhop/admin/server.hpp"

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "routes.hpp"

namespace mailhop::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kBodyLimit = 4 * 1024;  // no endpoint takes a body
constexpr auto kRequestDeadline = std::chrono::seconds(10);  // to read one request, or write one response
constexpr std::size_t kMaxConnections = 64;

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> md{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md.data(), &n, EVP_sha256(), nullptr);
  return md;
}

}  // namespace

struct AdminServer::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  std::shared_ptr<detail::Context> context;
  tcp::acceptor acceptor;
  asio::steady_timer heartbeat;
  std::optional<std::array<unsigned char, 32>> token_digest;  // set when admin.token_file is
  std::mutex mutex;  // guards sessions and stopped
  std::map<std::uint64_t, std::pair<asio::strand<asio::io_context::executor_type>, beast::tcp_stream*>> sessions;
  std::uint64_t next_session = 0;
  bool stopped = false;

  Impl(asio::io_context& i, AdminDeps deps)
      : io(i), context(std::make_shared<detail::Context>()), acceptor(asio::make_strand(i)), heartbeat(i) {
    context->deps = std::move(deps);
    context->reconfigure(context->deps.config);
  }

  bool authorized(std::string_view header) const {
    if (!token_digest) return true;
    constexpr std::string_view scheme = "Bearer ";
    if (header.size() <= scheme.size() || !beast::iequals(header.substr(0, scheme.size()), scheme)) return false;
    auto given = sha256(header.substr(scheme.size()));
    return CRYPTO_memcmp(given.data(), token_digest->data(), given.size()) == 0;
  }

  void tick() {
    context->last_tick.store(std::chrono::steady_clock::now().time_since_epoch().count());
    heartbeat.expires_after(std::chrono::seconds(1));
    heartbeat.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      self->tick();
    });
  }
};

namespace {

http::response<http::string_body> to_http(const detail::Response& r, unsigned version, bool keep_alive, bool head) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "mailhop");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  if (!r.allow.empty()) res.set(http::field::allow, r.allow);
  if (r.status == 401) res.set(http::field::www_authenticate, "Bearer realm=\"mailhop\"");
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the GET
  return res;
}

asio::awaitable<void> write_and_close(beast::tcp_stream& stream, const detail::Response& r) {
  auto res = to_http(r, 11, false, false);
  stream.expires_after(kRequestDeadline);
  co_await http::async_write(stream, res, use_tuple);
}

asio::awaitable<void> session(std::shared_ptr<AdminServer::Impl> self, beast::tcp_stream stream, std::uint64_t number) {
  {
    std::lock_guard lock(self->mutex);
    if (auto it = self->sessions.find(number); it != self->sessions.end()) it->second.second = &stream;
  }
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    stream.expires_after(kRequestDeadline);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec == http::error::body_limit) {
      auto error = detail::json_error(413, "request body too large");
      co_await write_and_close(stream, error);
      break;
    }
    if (ec == http::error::header_limit) {
      auto error = detail::json_error(431, "request header too large");
      co_await write_and_close(stream, error);
      break;
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      break;
    if (ec) {  // not HTTP
      auto error = detail::json_error(400, "malformed request");
      co_await write_and_close(stream, error);
      break;
    }
    auto req = parser.release();
    detail::Response response;
    if (!self->authorized(req[http::field::authorization])) {
      response = detail::json_error(401, "missing or wrong bearer token");
    } else {
      detail::Request request{std::string(req.method_string()), std::string(req.target())};
      auto context = self->context;
      auto answer = co_await detail::handle(context, std::move(request));
      response = std::move(answer);
    }
    spdlog::debug("admin: {} {} {}", std::string(req.method_string()), std::string(req.target()), response.status);
    auto res = to_http(response, req.version(), req.keep_alive(), req.method() == http::verb::head);
    stream.expires_after(kRequestDeadline);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    if (wec || !res.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::lock_guard lock(self->mutex);
  self->sessions.erase(number);
}

asio::awaitable<void> accept_loop(std::shared_ptr<AdminServer::Impl> self) {
  for (;;) {
    auto strand = asio::make_strand(self->io);
    auto [ec, socket] = co_await self->acceptor.async_accept(strand, use_tuple);
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("admin: accept: {}", ec.message());
      continue;
    }
    std::uint64_t number = 0;
    {
      std::lock_guard lock(self->mutex);
      if (self->stopped) co_return;
      if (self->sessions.size() < kMaxConnections) {
        number = ++self->next_session;
        // The session's stream lives in its frame; the registry gets a pointer to it (for
        // stop(), used only on the session's strand while the entry exists).
        self->sessions.emplace(number, std::make_pair(strand, nullptr));
      }
    }
    if (number == 0) {
      boost::system::error_code ignored;
      socket.close(ignored);  // over the cap: closed at once
      continue;
    }
    beast::tcp_stream stream(std::move(socket));
    // (co_spawn may start the session at once, on this thread: the lock is not held here.)
    asio::co_spawn(strand, session(self, std::move(stream), number), [self, number](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("admin: session failed: {}", ex.what());
        }
        std::lock_guard lock(self->mutex);
        self->sessions.erase(number);
      }
    });
  }
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, AdminDeps deps) : impl_(std::make_shared<Impl>(io, std::move(deps))) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
  auto& self = *impl_;
  const auto& admin = self.context->deps.config->admin;
  if (admin.token_file) {
    std::ifstream in(*admin.token_file);
    std::stringstream text;
    text << in.rdbuf();
    std::string token = text.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (!in || token.empty())
      throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                              "cannot read a token from admin.token_file " + *admin.token_file);
    self.token_digest = sha256(token);
  }
  auto address = config::parse_socket_address(admin.listen);
  if (!address) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "admin.listen " + admin.listen);
  tcp::endpoint ep(address->address, address->port);
  boost::system::error_code ec;
  self.acceptor.open(ep.protocol(), ec);
  if (!ec) self.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) self.acceptor.bind(ep, ec);
  if (!ec) self.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::system_error(std::error_code(ec.value(), std::generic_category()),
                            "cannot listen on admin.listen " + admin.listen);
  self.tick();
  asio::co_spawn(self.acceptor.get_executor(), accept_loop(impl_), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::critical("admin: accept loop failed: {}", ex.what());
    }
  });
  spdlog::info("admin: listening on {}{}", admin.listen, self.token_digest ? " (bearer token required)" : "");
}

void AdminServer::stop() {
  auto self = impl_;
  std::lock_guard lock(self->mutex);
  if (self->stopped) return;
  self->stopped = true;
  asio::post(self->acceptor.get_executor(), [self] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
  });
  asio::post(self->io, [self] { self->heartbeat.cancel(); });
  // Open keep-alive sessions end at their read deadline at the latest; cancel them now.
  for (auto& [number, entry] : self->sessions) {
    asio::post(entry.first, [self, number = number] {
      std::lock_guard inner(self->mutex);
      auto it = self->sessions.find(number);
      if (it != self->sessions.end() && it->second.second) it->second.second->cancel();
    });
  }
}

void AdminServer::reconfigure(std::shared_ptr<const config::Config> config) { impl_->context->reconfigure(std::move(config)); }

tcp::endpoint AdminServer::local_endpoint() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

}  // namespace mailhop::admin
