// The server's side of AUTH (RFC 4954) outside the session: the users file, loaded at start-up
// and again on SIGHUP, and password checks run on a small thread pool of their own, so the
// deliberately slow KDF (credentials.hpp) never blocks a network thread.
//
// SECURITY: passwords are wiped (OPENSSL_cleanse) once checked. The users file is swapped
// whole, so a check runs against one version of it, never a half-read one.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "mailhop/server/credentials.hpp"

namespace mailhop::server {

class Authenticator {
 public:
  // Loads `users_file`. Throws std::runtime_error listing the file's errors (a start-up failure).
  explicit Authenticator(std::string users_file, std::size_t threads = 2);
  // For tests: users already loaded; reload() then has no file to read.
  explicit Authenticator(UsersFile users, std::size_t threads = 2);
  ~Authenticator();

  // true when `password` is `user`'s. Runs on the pool; the caller resumes on its own executor.
  // `password` is wiped before this returns.
  boost::asio::awaitable<bool> verify(std::string user, std::string password);
  // The per-user sender restriction (credentials.hpp): "" is the null sender.
  bool may_send_as(std::string_view user, std::string_view sender) const;

  // Reads the users file again. nullopt on success; on failure the old users stay and the reason
  // is returned.
  std::optional<std::string> reload();

  // Waits until every check in progress or queued has finished and resumed its caller (on the
  // caller's executor), and ends the pool's threads. For an owner whose io_context may be
  // stopped with checks in flight (io_context::stop(), run_for()): call it once that
  // io_context no longer runs and before it is destroyed, since a pool thread touches the
  // io_context until it has handed the result over (util/run_on.hpp). No verify() may follow.
  void join();

 private:
  std::string users_file_;
  std::atomic<std::shared_ptr<const UsersFile>> users_;
  boost::asio::thread_pool pool_;
};

}  // namespace mailhop::server
