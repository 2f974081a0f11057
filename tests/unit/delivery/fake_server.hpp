// A small scripted SMTP server on 127.0.0.1 for the RelayClient tests: it answers each
// command from its settings, records every command line, and keeps the raw DATA bytes as they
// came over the wire (so dot-stuffing can be checked byte for byte).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace mailhop::test {

namespace asio = boost::asio;
using asio::ip::tcp;

struct FakeServer {
  tcp::acceptor acceptor;
  std::string greeting = "220 fake.test ESMTP\r\n";
  std::vector<std::string> extensions = {"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES"};
  int ehlo_code = 250;  // a 5xx makes the client fall back to HELO
  std::string mail_reply = "250 2.1.0 Ok\r\n";
  std::map<std::string, std::string> rcpt_replies;  // address -> reply; default 250
  std::string data_reply = "354 End data with <CR><LF>.<CR><LF>\r\n";
  std::string final_reply = "250 2.0.0 Ok: queued\r\n";
  std::vector<std::string> auth_replies;  // consumed in order by AUTH and its continuation lines
  bool hold_replies_until_data = false;   // only a pipelining client gets past MAIL
  bool drop_after_data = false;           // close the connection instead of the final reply
  bool close_after_final_reply = false;   // send the final reply, then close (an idle timeout)
  bool silent = false;                    // never send the greeting

  std::vector<std::string> lines;  // every command line received, without CRLF
  std::vector<std::string> data;   // raw DATA bytes per transaction, up to and including ".\r\n"
  unsigned connections = 0;
  unsigned closed = 0;  // connections this server has ended

  explicit FakeServer(asio::io_context& io)
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), port_(acceptor.local_endpoint().port()) {}
  std::uint16_t port() const { return port_; }

  // Serves `count` connections one after the other.
  asio::awaitable<void> run(unsigned count = 1) {
    for (unsigned n = 0; n < count; ++n) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++connections;
      co_await serve(socket);
      boost::system::error_code ignored;
      socket.close(ignored);
      ++closed;
    }
  }

 private:
  using Socket = tcp::socket;
  std::uint16_t port_;

  asio::awaitable<bool> send(Socket& s, const std::string& text) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }

  asio::awaitable<void> serve(Socket& s) {
    if (silent) {
      std::string sink;
      co_await asio::async_read_until(s, asio::dynamic_buffer(sink), "\r\n", asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    if (!co_await send(s, greeting)) co_return;
    if (!greeting.starts_with("220")) {
      std::string rest;  // wait for QUIT or close
      co_await asio::async_read_until(s, asio::dynamic_buffer(rest), "\r\n", asio::as_tuple(asio::use_awaitable));
      co_await send(s, "221 bye\r\n");
      co_return;
    }
    std::string buffer;
    std::string held;      // replies kept back while waiting for DATA
    bool in_auth = false;
    std::size_t auth_next = 0;
    bool in_group = false;
    for (;;) {
      auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buffer), "\r\n",
                                                     asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      std::string line = buffer.substr(0, n - 2);
      buffer.erase(0, n);
      lines.push_back(line);
      std::string upper = line;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

      std::string reply;
      if (in_auth || upper.starts_with("AUTH ")) {
        reply = auth_next < auth_replies.size() ? auth_replies[auth_next++] : "535 5.7.8 no script\r\n";
        in_auth = reply.starts_with("334");
      } else if (upper.starts_with("EHLO ")) {
        if (ehlo_code != 250) {
          reply = std::to_string(ehlo_code) + " 5.5.1 EHLO not understood\r\n";
        } else {
          reply = "250-fake.test\r\n";
          for (std::size_t i = 0; i < extensions.size(); ++i)
            reply += (i + 1 < extensions.size() ? "250-" : "250 ") + extensions[i] + "\r\n";
          if (extensions.empty()) reply = "250 fake.test\r\n";
        }
      } else if (upper.starts_with("HELO ")) {
        reply = "250 fake.test\r\n";
      } else if (upper.starts_with("MAIL FROM:")) {
        reply = mail_reply;
        in_group = hold_replies_until_data;
      } else if (upper.starts_with("RCPT TO:<")) {
        std::string address = line.substr(9, line.find('>') - 9);
        auto it = rcpt_replies.find(address);
        reply = it == rcpt_replies.end() ? "250 2.1.5 Ok\r\n" : it->second;
      } else if (upper == "DATA") {
        reply = data_reply;
      } else if (upper == "RSET" || upper == "NOOP") {
        reply = "250 2.0.0 Ok\r\n";
      } else if (upper == "QUIT") {
        co_await send(s, "221 2.0.0 Bye\r\n");
        co_return;
      } else {
        reply = "502 5.5.2 Unknown command\r\n";
      }

      if (in_group && upper != "DATA") {
        held += reply;
        continue;
      }
      in_group = false;
      reply = held + reply;
      held.clear();
      if (!co_await send(s, reply)) co_return;

      if (upper == "DATA" && reply.ends_with(data_reply) && data_reply.starts_with("354")) {
        // Raw bytes until the end-of-data line; the terminator may also be the very first line.
        while (!(buffer.starts_with(".\r\n") || buffer.find("\r\n.\r\n") != std::string::npos)) {
          char chunk[4096];
          auto [rec, m] = co_await s.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
          if (rec) co_return;
          buffer.append(chunk, m);
        }
        std::size_t end = buffer.starts_with(".\r\n") ? 3 : buffer.find("\r\n.\r\n") + 5;
        data.push_back(buffer.substr(0, end));
        buffer.erase(0, end);
        if (drop_after_data) co_return;
        if (!co_await send(s, final_reply)) co_return;
        if (close_after_final_reply) co_return;
      }
    }
  }
};

}  // namespace mailhop::test
