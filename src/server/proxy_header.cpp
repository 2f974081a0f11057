// Reads a PROXY protocol header off the socket, exactly as many bytes as the parser asks for.
#include "proxy_header.hpp"

#include <string>
#include <tuple>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailhop::server {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

asio::awaitable<ProxyHeaderRead> read_proxy_header(asio::ip::tcp::socket& socket, asio::steady_timer& timer,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   const ShutdownSignal* shutdown) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  ProxyHeaderRead read;
  std::string received;
  for (;;) {
    read.header = smtp::parse_proxy_header(received);
    read.bytes = received.size();
    if (read.header.status == smtp::ProxyParse::Status::complete) {
      read.outcome = ProxyHeaderRead::Outcome::accepted;
      co_return read;
    }
    if (read.header.status == smtp::ProxyParse::Status::invalid) {
      read.outcome = ProxyHeaderRead::Outcome::invalid;
      co_return read;
    }
    // The parser never asks for more than the longest header; this holds whatever it says.
    if (received.size() + read.header.need > smtp::kProxyMaxHeader) {
      read.outcome = ProxyHeaderRead::Outcome::invalid;
      read.header.error = "header longer than " + std::to_string(smtp::kProxyMaxHeader) + " bytes";
      co_return read;
    }
    // A stop request that came while the last read was completing found no wait to cancel.
    if (shutdown && shutdown->requested()) {
      read.outcome = ProxyHeaderRead::Outcome::cancelled;
      co_return read;
    }
    // Past the deadline, a peer that keeps bytes coming must not win the race below.
    if (std::chrono::steady_clock::now() >= deadline) {
      read.outcome = ProxyHeaderRead::Outcome::timeout;
      co_return read;
    }
    // Up to `need` bytes, whatever has arrived: each answer of the parser sees every byte at
    // once, so a bad header is refused as soon as it shows, and nothing past the header is taken.
    const auto have = received.size();
    received.resize(have + read.header.need);
    timer.expires_at(deadline);
    auto result = co_await (socket.async_read_some(asio::buffer(received.data() + have, read.header.need), use_tuple) ||
                            timer.async_wait(use_tuple));
    if (result.index() != 0) {
      received.resize(have);
      auto [ec] = std::get<1>(result);
      read.outcome = ec ? ProxyHeaderRead::Outcome::cancelled : ProxyHeaderRead::Outcome::timeout;
      co_return read;
    }
    auto [ec, n] = std::get<0>(result);
    received.resize(have + n);
    if (ec) {
      read.bytes = received.size();
      read.outcome = ProxyHeaderRead::Outcome::closed;
      co_return read;
    }
  }
}

bool is_trusted_proxy(const config::Config& config, const asio::ip::address& peer) {
  for (const auto& network : config.trusted_proxies) {
    if (network.contains(peer)) return true;
  }
  return false;
}

}  // namespace mailhop::server
