// Relay permission and connection-limit exemption. The rules live here, not in the session, so
// the trust issue (AUTH, sender restrictions) changes one file.
#include "mailhop/server/policy.hpp"

namespace mailhop::server {

std::optional<Response> check_relay(const config::Config& config, const ClientStanding& client) {
  if (client.authenticated) return std::nullopt;
  if (config.may_relay_unauthenticated(client.address)) return std::nullopt;
  return Response{554, "5.7.1", "Relay access denied"};
}

bool exempt_from_per_ip_limit(const config::Config& config, const boost::asio::ip::address& client) {
  for (const auto& network : config.allowed_networks) {
    if (network.contains(client)) return true;
  }
  return false;
}

boost::asio::ip::address canonical_address(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  }
  return a;
}

}  // namespace mailhop::server
