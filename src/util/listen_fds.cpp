// Socket activation, the receiving side (see listen_fds.hpp and sd_listen_fds(3)).
//
// SECURITY: the variables come from whoever started the process. Numbers are parsed strictly
// (no sign, no trailing text, no overflow), and a descriptor is used as a listener only once
// listening_address() has checked that it is a listening TCP socket.
#include "mailhop/util/listen_fds.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace mailhop::util {
namespace {

// A decimal number without sign or other characters, as systemd writes it.
long parse_number(const char* variable, const std::string& text, long max) {
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max)
    throw std::invalid_argument(std::string(variable) + "=" + text + " is not a valid number");
  return value;
}

std::optional<std::string> variable(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

std::string describe(const InheritedSocket& s) {
  return "fd " + std::to_string(s.fd) + (s.name.empty() ? "" : " (" + s.name + ")");
}

}  // namespace

std::vector<InheritedSocket> parse_listen_fds(std::optional<std::string> listen_pid,
                                              std::optional<std::string> listen_fds,
                                              std::optional<std::string> listen_fdnames, long self) {
  if (!listen_pid) return {};
  if (parse_number("LISTEN_PID", *listen_pid, LONG_MAX) != self) return {};
  if (!listen_fds) throw std::invalid_argument("LISTEN_PID is set but LISTEN_FDS is not");
  const long count = parse_number("LISTEN_FDS", *listen_fds, INT_MAX - kListenFdsStart);

  std::vector<std::string> names;
  if (listen_fdnames) {
    std::string::size_type from = 0;
    for (;;) {
      auto colon = listen_fdnames->find(':', from);
      names.push_back(listen_fdnames->substr(from, colon == std::string::npos ? std::string::npos : colon - from));
      if (colon == std::string::npos) break;
      from = colon + 1;
    }
    if (static_cast<long>(names.size()) != count)
      throw std::invalid_argument("LISTEN_FDNAMES has " + std::to_string(names.size()) + " name(s), LISTEN_FDS=" +
                                  std::to_string(count));
  }
  std::vector<InheritedSocket> sockets;
  for (long i = 0; i < count; ++i)
    sockets.push_back(InheritedSocket{kListenFdsStart + static_cast<int>(i), names.empty() ? "" : names[i]});
  return sockets;
}

std::vector<InheritedSocket> take_listen_fds() {
  auto pid = variable("LISTEN_PID");
  auto fds = variable("LISTEN_FDS");
  auto names = variable("LISTEN_FDNAMES");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  auto sockets = parse_listen_fds(pid, fds, names, static_cast<long>(::getpid()));
  for (const auto& s : sockets) {
    int flags = ::fcntl(s.fd, F_GETFD);
    if (flags < 0 || ::fcntl(s.fd, F_SETFD, flags | FD_CLOEXEC) < 0)
      throw std::invalid_argument("LISTEN_FDS: " + describe(s) + " is not open: " + std::strerror(errno));
  }
  return sockets;
}

boost::asio::ip::tcp::endpoint listening_address(const InheritedSocket& s) {
  auto refuse = [&](const std::string& why) {
    return std::invalid_argument("the socket passed as " + describe(s) + " " + why);
  };
  int type = 0;
  int listening = 0;
  socklen_t length = sizeof type;
  if (::getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &type, &length) < 0)
    throw refuse(std::string("cannot be used: ") + std::strerror(errno));
  length = sizeof listening;
  if (type != SOCK_STREAM || ::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) < 0 || !listening)
    throw refuse("is not a listening stream socket");

  boost::asio::ip::tcp::endpoint endpoint;
  length = static_cast<socklen_t>(endpoint.capacity());
  if (::getsockname(s.fd, endpoint.data(), &length) < 0)
    throw refuse(std::string("has no local address: ") + std::strerror(errno));
  const auto family = endpoint.data()->sa_family;
  int protocol = 0;
  length = sizeof protocol;
  if ((family != AF_INET && family != AF_INET6) || ::getsockopt(s.fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) < 0 ||
      protocol != IPPROTO_TCP)
    throw refuse("is not a TCP socket (IPv4 or IPv6)");
  endpoint.resize(length);
  return endpoint;
}

}  // namespace mailhop::util
