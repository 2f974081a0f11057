// mailhop passwd USER: makes one line of the users file (auth.users_file), `USER:HASH`, with a
// salted scrypt hash in PHC string format (server/credentials.hpp has the format).
//
//   mailhop passwd alice >> /etc/mailhop/users          asks twice, without echo, on a terminal
//   printf '%s\n' "$PW" | mailhop passwd alice          one line from a pipe (scripts, containers)
//
// The password is read from standard input: on a terminal with a prompt on stderr and echo off
// (termios), asked twice; otherwise one line, its trailing newline (LF or CRLF) removed. Add the
// senders restriction by hand: `USER:HASH:alice@example.org,@example.org`.
//
// Exit codes (sysexits.h): 0; 64 (EX_USAGE) for a user name the file cannot hold; 65
// (EX_DATAERR) for an empty password or two that differ; 74 (EX_IOERR) when stdin cannot be read.
//
// SECURITY: the password never reaches the command line (ps, shell history), stdout or stderr,
// and is wiped from memory after use. Echo is restored on every exit path, Ctrl-C included.
#include <openssl/crypto.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>

#include "cli/commands.hpp"
#include "mailhop/server/credentials.hpp"

namespace mailhop::cli {

namespace {

// The terminal settings to restore if a signal arrives while echo is off.
termios g_saved_termios{};
volatile std::sig_atomic_t g_echo_off = 0;

extern "C" void restore_and_reraise(int sig) {
  if (g_echo_off) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Echo off for the lifetime of the object (and back on if the process is interrupted).
class NoEcho {
 public:
  NoEcho() {
    if (::tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) return;
    termios quiet = g_saved_termios;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;  // the user still sees that Enter was taken
    old_int_ = std::signal(SIGINT, restore_and_reraise);
    old_term_ = std::signal(SIGTERM, restore_and_reraise);
    old_hup_ = std::signal(SIGHUP, restore_and_reraise);
    g_echo_off = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~NoEcho() {
    // TCSADRAIN, not TCSAFLUSH: what the user typed ahead after Enter is kept.
    if (g_echo_off) ::tcsetattr(STDIN_FILENO, TCSADRAIN, &g_saved_termios);
    g_echo_off = 0;
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
    std::signal(SIGHUP, old_hup_);
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
  void (*old_hup_)(int) = SIG_DFL;
};

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// One line from stdin without its line end; nullopt at end of input before any byte.
std::optional<std::string> read_line() {
  std::string line;
  if (!std::getline(std::cin, line) && line.empty()) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Echo off first, then the prompt (as getpass(3) does): a reply typed the moment the prompt
// shows is then never echoed, nor thrown away by the TCSAFLUSH of turning echo off.
std::optional<std::string> prompt(const char* text) {
  NoEcho quiet;
  std::cerr << text << std::flush;
  return read_line();
}

int run_passwd(const std::string& user, bool pbkdf2) {
  if (!server::valid_user_name(user)) {
    std::cerr << "mailhop passwd: the user name must be 1 to 255 bytes without ':', white space or control "
                 "characters\n";
    return EX_USAGE;
  }
  std::optional<std::string> password;
  if (::isatty(STDIN_FILENO)) {
    password = prompt("Password: ");
    std::optional<std::string> again;
    if (password && !password->empty()) {
      again = prompt("Again: ");
      if (!again || *again != *password) {
        if (again) wipe(*again);
        wipe(*password);
        std::cerr << "mailhop passwd: the passwords differ\n";
        return EX_DATAERR;
      }
      wipe(*again);
    }
  } else {
    password = read_line();
  }
  if (!password && std::cin.bad()) {
    std::cerr << "mailhop passwd: cannot read standard input\n";
    return EX_IOERR;
  }
  if (!password || password->empty()) {
    std::cerr << "mailhop passwd: empty password (give it on standard input)\n";
    return EX_DATAERR;
  }
  server::HashParams params;
  if (pbkdf2) params.kdf = server::Kdf::pbkdf2_sha256;
  std::string hash;
  try {
    hash = server::make_hash(*password, params);
  } catch (const std::runtime_error& e) {
    wipe(*password);
    std::cerr << "mailhop passwd: " << e.what() << '\n';
    return EX_SOFTWARE;
  }
  wipe(*password);
  std::cout << user << ':' << hash << '\n' << std::flush;
  return std::cout ? EX_OK : EX_IOERR;
}

}  // namespace

void add_passwd_command(CLI::App& app, int& exit_code) {
  auto* sub = app.add_subcommand("passwd", "Print a users-file line USER:HASH for a password read from standard input");
  auto user = std::make_shared<std::string>();
  auto pbkdf2 = std::make_shared<bool>(false);
  sub->add_option("USER", *user, "the user name clients give to AUTH")->required();
  sub->add_flag("--pbkdf2", *pbkdf2, "PBKDF2-SHA256 (600000 iterations) instead of scrypt (ln=15,r=8,p=1)");
  sub->footer(
      "On a terminal the password is asked twice without echo; otherwise one line is read.\n"
      "Append the output to the file named by auth.users_file; add :SENDERS to restrict the envelope\n"
      "senders (alice@example.org,@example.org,<>).\n"
      "Exit status: 0; 64 for a bad user name; 65 for an empty password or two that differ.");
  sub->callback([&exit_code, user, pbkdf2] { exit_code = run_passwd(*user, *pbkdf2); });
}

}  // namespace mailhop::cli
