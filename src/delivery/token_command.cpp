// relay.oauth2.token_command: runs a program (/bin/sh -c, stdin /dev/null, stderr inherited)
// and reads an access token from its stdout, for identity providers mailhop does not speak to
// directly (msmtp's passwordeval). The output is either the token alone, or a JSON token
// response ({"access_token": …, "expires_in": …}) when the program knows the lifetime.
//
// SECURITY: the command comes from the configuration, not from mail. Its output is bounded
// (64 KiB) and never logged; it runs with a deadline and is killed when it overruns.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "mailhop/delivery/token_provider.hpp"

extern char** environ;

namespace mailhop::delivery {

namespace asio = boost::asio;
using asio::awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxOutput = 64 * 1024;

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "ended abnormally";
}
}  // namespace

awaitable<FetchResult> fetch_from_command(asio::any_io_executor ex, std::string command) {
  FetchResult r;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    r.error = std::string("token_command: cannot make a pipe: ") + std::strerror(errno);
    co_return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    r.error = std::string("token_command: cannot start /bin/sh: ") + std::strerror(err);
    co_return r;
  }

  asio::posix::stream_descriptor pipe(ex, out[0]);
  asio::steady_timer timer(ex);
  timer.expires_after(TokenProvider::kRequestTimeout);
  std::string output;
  std::array<char, 4096> buf;
  bool timed_out = false;
  for (;;) {
    auto res = co_await (pipe.async_read_some(asio::buffer(buf), use_tuple) || timer.async_wait(use_tuple));
    if (res.index() == 1) {
      timed_out = true;
      break;
    }
    auto [ec, n] = std::get<0>(res);
    if (ec) break;  // EOF: the program closed its stdout
    output.append(buf.data(), n);
    if (output.size() > kMaxOutput) break;
  }
  pipe.close();

  // Wait for the exit within what is left of the deadline; then kill it.
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (timed_out || std::chrono::steady_clock::now() >= timer.expiry()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    asio::steady_timer pause(ex);
    pause.expires_after(std::chrono::milliseconds(20));
    co_await pause.async_wait(use_tuple);
  }
  if (timed_out) {
    r.error = fmt::format("token_command did not finish within {} s", TokenProvider::kRequestTimeout.count());
    co_return r;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.error = "token_command " + describe_status(status);
    co_return r;
  }
  if (output.size() > kMaxOutput) {
    r.error = fmt::format("token_command wrote more than {} bytes", kMaxOutput);
    co_return r;
  }
  auto first = output.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    r.error = "token_command printed no token";
    co_return r;
  }
  if (output[first] == '{') {
    r = parse_token_response(200, output, "token_command");
    co_return r;
  }
  auto end = output.find_first_of("\r\n", first);
  TokenResponse t;
  t.access_token = output.substr(first, end == std::string::npos ? std::string::npos : end - first);
  while (!t.access_token.empty() && (t.access_token.back() == ' ' || t.access_token.back() == '\t')) t.access_token.pop_back();
  t.expires_in = TokenProvider::kCommandLifetime;
  r.token = std::move(t);
  co_return r;
}

}  // namespace mailhop::delivery
