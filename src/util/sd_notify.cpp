// The systemd notify protocol over a datagram socket (see sd_notify.hpp and sd_notify(3)).
//
// SECURITY: $NOTIFY_SOCKET comes from the service manager; a name that does not fit a
// sockaddr_un is refused, never truncated. Nothing is received.
#include "mailhop/util/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace mailhop::util {

std::error_code sd_notify_to(std::string_view name, std::string_view state) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A path ("/run/systemd/notify"), or an abstract name ("@name": a leading NUL on the wire).
  if (name.empty() || (name[0] != '/' && name[0] != '@') || name.size() > sizeof(addr.sun_path)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  std::memcpy(addr.sun_path, name.data(), name.size());
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  if (name[0] == '@') {
    addr.sun_path[0] = '\0';
  } else if (name.size() < sizeof(addr.sun_path)) {
    length += 1;  // the terminating NUL of a path
  } else {
    return std::make_error_code(std::errc::filename_too_long);
  }

  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {errno, std::generic_category()};
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), length);
  int err = errno;
  ::close(fd);
  if (sent < 0) return {err, std::generic_category()};
  if (static_cast<std::size_t>(sent) != state.size()) return std::make_error_code(std::errc::message_size);
  return {};
}

std::error_code sd_notify(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (!name || !*name) return {};
  return sd_notify_to(name, state);
}

std::error_code sd_notify_ready(std::string_view status) {
  return sd_notify("READY=1\nSTATUS=" + std::string(status));
}

std::error_code sd_notify_status(std::string_view status) { return sd_notify("STATUS=" + std::string(status)); }

std::error_code sd_notify_stopping() { return sd_notify("STOPPING=1"); }

std::error_code sd_notify_reloading() { return sd_notify("RELOADING=1"); }

}  // namespace mailhop::util
