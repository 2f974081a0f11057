// listen_fds: the sd_listen_fds(3) variables parsed strictly (another process's sockets are not
// taken, malformed values are refused by name), the environment cleared after taking them, and
// a passed descriptor accepted as a listener only when it is a listening TCP socket.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "mailhop/util/listen_fds.hpp"

using mailhop::util::InheritedSocket;
using mailhop::util::listening_address;
using mailhop::util::parse_listen_fds;
using mailhop::util::take_listen_fds;

namespace {

// A socket of `type` in `family`; bound to loopback port 0 and listening when asked.
class Socket {
 public:
  Socket(int family, int type, bool listen) {
    fd_ = ::socket(family, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    if (family == AF_INET) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    if (listen) REQUIRE(::listen(fd_, 4) == 0);
  }
  ~Socket() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};


}  // namespace

TEST_CASE("listen_fds: the sockets are this process's only when LISTEN_PID names it", "[listen_fds]") {
  CHECK(parse_listen_fds(std::nullopt, "2", std::nullopt, 100).empty());
  CHECK(parse_listen_fds("101", "2", std::nullopt, 100).empty());  // a parent's, inherited by mistake
  auto sockets = parse_listen_fds("100", "2", std::nullopt, 100);
  REQUIRE(sockets.size() == 2);
  CHECK(sockets[0].fd == 3);
  CHECK(sockets[1].fd == 4);
  CHECK(sockets[0].name.empty());
  CHECK(parse_listen_fds("100", "0", std::nullopt, 100).empty());
}

TEST_CASE("listen_fds: LISTEN_FDNAMES names them in order", "[listen_fds]") {
  auto sockets = parse_listen_fds("7", "3", "mailhop.socket::submission", 7);
  REQUIRE(sockets.size() == 3);
  CHECK(sockets[0].name == "mailhop.socket");
  CHECK(sockets[1].name.empty());
  CHECK(sockets[2].name == "submission");
  CHECK(sockets[2].fd == 5);
}

TEST_CASE("listen_fds: malformed values are refused, naming the variable", "[listen_fds]") {
  for (const char* bad : {"", "x", "-1", "+1", "1x", " 1", "99999999999999999999999"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_listen_fds(bad, "1", std::nullopt, 1), Catch::Contains("LISTEN_PID="));
    CHECK_THROWS_WITH(parse_listen_fds("1", bad, std::nullopt, 1), Catch::Contains("LISTEN_FDS="));
  }
  CHECK_THROWS_WITH(parse_listen_fds("1", std::nullopt, std::nullopt, 1), Catch::Contains("LISTEN_FDS is not"));
  CHECK_THROWS_WITH(parse_listen_fds("1", "2147483647", std::nullopt, 1), Catch::Contains("LISTEN_FDS="));
  CHECK_THROWS_WITH(parse_listen_fds("1", "2", "one", 1), Catch::Contains("LISTEN_FDNAMES has 1 name(s), LISTEN_FDS=2"));
}

TEST_CASE("listen_fds: taking the sockets unsets the variables, also when they were not ours", "[listen_fds]") {
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("LISTEN_FDNAMES", "x", 1);
  CHECK(take_listen_fds().empty());
  CHECK(std::getenv("LISTEN_PID") == nullptr);
  CHECK(std::getenv("LISTEN_FDS") == nullptr);
  CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
  CHECK(take_listen_fds().empty());  // nothing set: nothing taken
}

TEST_CASE("listen_fds: a listening TCP socket gives its local address", "[listen_fds]") {
  Socket s(AF_INET, SOCK_STREAM, true);
  auto ep = listening_address(InheritedSocket{s.fd(), "smtp"});
  CHECK(ep.address().to_string() == "127.0.0.1");
  CHECK(ep.port() != 0);
}

TEST_CASE("listen_fds: anything but a listening TCP socket is refused, naming the descriptor", "[listen_fds]") {
  Socket not_listening(AF_INET, SOCK_STREAM, false);
  CHECK_THROWS_WITH(listening_address(InheritedSocket{not_listening.fd(), "smtp"}),
                    Catch::Contains("fd " + std::to_string(not_listening.fd()) + " (smtp)") &&
                        Catch::Contains("is not a listening stream socket"));
  Socket datagram(AF_INET, SOCK_DGRAM, false);
  CHECK_THROWS_WITH(listening_address(InheritedSocket{datagram.fd(), ""}),
                    Catch::Contains("is not a listening stream socket"));
  Socket unix_socket(AF_UNIX, SOCK_STREAM, false);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string name = "mailhop-listen-fds-test-" + std::to_string(::getpid());  // abstract: no file left
  std::copy(name.begin(), name.end(), a.sun_path + 1);
  REQUIRE(::bind(unix_socket.fd(), reinterpret_cast<sockaddr*>(&a),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) == 0);
  REQUIRE(::listen(unix_socket.fd(), 1) == 0);
  CHECK_THROWS_WITH(listening_address(InheritedSocket{unix_socket.fd(), ""}), Catch::Contains("is not a TCP socket"));
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  CHECK_THROWS_WITH(listening_address(InheritedSocket{pipe_fds[0], ""}), Catch::Contains("cannot be used"));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}
