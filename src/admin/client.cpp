// The admin API client (see mailhop/admin/client.hpp): Beast, synchronous, on its own
// io_context, so the command line needs no coroutines.
//
// SECURITY: the token is read from admin.token_file and sent only to admin.listen; the reply
// is bounded (1 MiB of header and body per queue listing of 2000+ messages: 64 MiB cap).
#include "mailhop/admin/client.hpp"

#include <fstream>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mailhop::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

ClientResponse request(const config::Config& config, const std::string& method, const std::string& target,
                       std::chrono::milliseconds deadline) {
  ClientResponse out;
  auto address = config::parse_socket_address(config.admin.listen);
  if (!address) {
    out.error = "admin.listen " + config.admin.listen + " is not an address";
    return out;
  }
  std::string token;
  if (config.admin.token_file) {
    std::ifstream in(*config.admin.token_file);
    std::stringstream text;
    text << in.rdbuf();
    token = text.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (!in || token.empty()) {
      out.error = "cannot read the token from admin.token_file " + *config.admin.token_file;
      return out;
    }
  }
  asio::io_context io;
  beast::tcp_stream stream(io);
  tcp::endpoint ep(address->address, address->port);
  if (ep.address().is_unspecified())
    ep.address(ep.address().is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                     : asio::ip::address(asio::ip::address_v4::loopback()));
  stream.expires_after(deadline);

  http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, config.admin.listen);
  req.set(http::field::user_agent, "mailhop-cli");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  req.keep_alive(false);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  bool done = false;
  stream.async_connect(ep, [&](beast::error_code ec) {
    if (ec) {
      out.error = "cannot connect to the admin API at " + config.admin.listen + ": " + ec.message();
      return;
    }
    http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
      if (wec) {
        out.error = "admin API: " + wec.message();
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code rec, std::size_t) {
        if (rec) {
          out.error = "admin API: " + rec.message();
          return;
        }
        done = true;
      });
    });
  });
  io.run();
  if (done) {
    out.status = static_cast<int>(parser.get().result_int());
    out.body = parser.get().body();
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace mailhop::admin
