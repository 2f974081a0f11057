// sd_notify: the datagram reaches a socket the test holds (a path and an abstract name); no
// $NOTIFY_SOCKET means nothing is sent and no error; bad names are refused.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "mailhop/util/sd_notify.hpp"

using mailhop::util::sd_notify;
using mailhop::util::sd_notify_to;

namespace {

// A datagram socket bound to `name` ("/path" or "@abstract"), as the service manager holds.
class Receiver {
 public:
  explicit Receiver(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '@' ? 0 : 1));
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), length) == 0);
    timeval timeout{5, 0};  // a deadline, not a wait: the datagram is there already when sent
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Receiver() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  // The next datagram, or nullopt when none came.
  std::optional<std::string> receive() {
    char buffer[4096];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }
  // true when nothing is waiting.
  bool empty() {
    char c;
    return ::recv(fd_, &c, 1, MSG_DONTWAIT) < 0;
  }

 private:
  std::string name_;
  int fd_ = -1;
};

class ScopedNotifySocket {
 public:
  explicit ScopedNotifySocket(const char* value) {
    if (const char* old = std::getenv("NOTIFY_SOCKET")) old_ = old;
    if (value) {
      ::setenv("NOTIFY_SOCKET", value, 1);
    } else {
      ::unsetenv("NOTIFY_SOCKET");
    }
  }
  ~ScopedNotifySocket() {
    if (old_) {
      ::setenv("NOTIFY_SOCKET", old_->c_str(), 1);
    } else {
      ::unsetenv("NOTIFY_SOCKET");
    }
  }

 private:
  std::optional<std::string> old_;
};

std::string temp_socket_path() {
  auto dir = std::filesystem::temp_directory_path() / ("mailhop-notify-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / "notify.sock").string();
}

}  // namespace

TEST_CASE("sd_notify sends READY=1 and STATUS to a path socket named by NOTIFY_SOCKET") {
  auto path = temp_socket_path();
  Receiver receiver(path);
  ScopedNotifySocket env(path.c_str());
  CHECK_FALSE(mailhop::util::sd_notify_ready("listening on 127.0.0.1:2525"));
  CHECK(receiver.receive() == "READY=1\nSTATUS=listening on 127.0.0.1:2525");
  CHECK_FALSE(mailhop::util::sd_notify_status("queue: 3 messages"));
  CHECK(receiver.receive() == "STATUS=queue: 3 messages");
  CHECK_FALSE(mailhop::util::sd_notify_stopping());
  CHECK(receiver.receive() == "STOPPING=1");
  CHECK_FALSE(mailhop::util::sd_notify_reloading());
  CHECK(receiver.receive() == "RELOADING=1");
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST_CASE("sd_notify reaches an abstract socket (@name)") {
  std::string name = "@mailhop-notify-test-" + std::to_string(::getpid());
  Receiver receiver(name);
  ScopedNotifySocket env(name.c_str());
  CHECK_FALSE(sd_notify("READY=1"));
  CHECK(receiver.receive() == "READY=1");
}

TEST_CASE("without NOTIFY_SOCKET nothing is sent and there is no error") {
  std::string name = "@mailhop-notify-unset-" + std::to_string(::getpid());
  Receiver receiver(name);
  ScopedNotifySocket env(nullptr);
  CHECK_FALSE(sd_notify("READY=1"));
  CHECK(receiver.empty());
}

TEST_CASE("bad socket names are refused; a socket nobody holds is an error") {
  CHECK(sd_notify_to("relative/path", "READY=1") == std::errc::invalid_argument);
  CHECK(sd_notify_to("", "READY=1") == std::errc::invalid_argument);
  CHECK(sd_notify_to("/" + std::string(200, 'x'), "READY=1"));
  CHECK(sd_notify_to("@mailhop-nobody-listens-" + std::to_string(::getpid()), "READY=1"));
}
