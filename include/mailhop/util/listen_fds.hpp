// The listening sockets a service manager passes to the process it starts (socket activation,
// sd_listen_fds(3)), spoken directly: no libsystemd.
//
// The protocol: $LISTEN_PID names the process the sockets are for (a child that inherits the
// environment is not meant), $LISTEN_FDS their number N, and they are file descriptors 3 to
// 3+N-1; $LISTEN_FDNAMES optionally names them, colon-separated (FileDescriptorName= of the
// socket unit; systemd's default is the unit's name).
//
// Used by `mailhop run` with systemd/mailhop.socket: the server adopts these sockets instead of
// binding its listen addresses (server.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace mailhop::util {

inline constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

struct InheritedSocket {
  int fd = -1;
  std::string name;  // from $LISTEN_FDNAMES; "" when it is not set
};

// The sockets the three variables describe, for the process `self`: none when LISTEN_PID is
// unset or names another process. Throws std::invalid_argument, naming the variable, for a
// value that is not a number, or a LISTEN_FDNAMES whose count differs from LISTEN_FDS.
std::vector<InheritedSocket> parse_listen_fds(std::optional<std::string> listen_pid,
                                              std::optional<std::string> listen_fds,
                                              std::optional<std::string> listen_fdnames, long self);

// parse_listen_fds() on this process's environment. Then unsets LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES (so processes started later do not take the sockets for theirs) and marks
// each socket close-on-exec. Throws std::invalid_argument as above, or when a descriptor is not
// open. Call once, before other threads start (it changes the environment).
std::vector<InheritedSocket> take_listen_fds();

// The local address of `socket`, which must be a listening TCP socket (IPv4 or IPv6). Throws
// std::invalid_argument, naming the descriptor and the name, for anything else (not a socket, a
// UNIX or datagram socket, a socket that does not listen).
boost::asio::ip::tcp::endpoint listening_address(const InheritedSocket& socket);

}  // namespace mailhop::util
