// Access policy of the listener: who may relay, who counts against the per-IP connection limit.
// Today the only ground for relaying is the client's address (allowed_networks); AUTH adds the
// second one in the trust issue.
#pragma once

#include <optional>

#include <boost/asio/ip/address.hpp>

#include "mailhop/config/config.hpp"
#include "mailhop/server/response.hpp"

namespace mailhop::server {

struct ClientStanding {
  boost::asio::ip::address address;
  bool authenticated = false;
};

// nullopt when the client may relay to `recipient`; otherwise the refusal for RCPT
// (554 5.7.1 Relay access denied). mailhop has no local domains: every recipient is relayed.
std::optional<Response> check_relay(const config::Config& config, const ClientStanding& client);

// Clients in allowed_networks are exempt from max_connections_per_ip, as Postfix exempts
// mynetworks from its connection-rate limits.
bool exempt_from_per_ip_limit(const config::Config& config, const boost::asio::ip::address& client);

// The address as logs and Received: lines show it: IPv4-mapped IPv6 addresses as plain IPv4.
boost::asio::ip::address canonical_address(const boost::asio::ip::address& a);

}  // namespace mailhop::server
