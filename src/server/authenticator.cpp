// Password checks off the network threads, and the users file reload (see authenticator.hpp).
#include "mailhop/server/authenticator.hpp"

#include <openssl/crypto.h>

#include <stdexcept>

#include "mailhop/util/run_on.hpp"

namespace mailhop::server {

namespace asio = boost::asio;

namespace {

std::shared_ptr<const UsersFile> load_users(const std::string& path) {
  auto loaded = UsersFile::load(path);
  if (!loaded.users) {
    std::string why;
    for (const auto& e : loaded.errors) why += (why.empty() ? "" : "; ") + e.to_string();
    throw std::runtime_error(why.empty() ? "auth.users_file " + path + ": cannot be loaded" : why);
  }
  return std::make_shared<const UsersFile>(std::move(*loaded.users));
}

}  // namespace

Authenticator::Authenticator(std::string users_file, std::size_t threads)
    : users_file_(std::move(users_file)), pool_(threads) {
  users_.store(load_users(users_file_));
}

Authenticator::Authenticator(UsersFile users, std::size_t threads) : pool_(threads) {
  users_.store(std::make_shared<const UsersFile>(std::move(users)));
}

Authenticator::~Authenticator() {
  pool_.stop();
  pool_.join();
}

// Not stop(): a check still queued runs, so its caller gets a result rather than a handler
// destroyed later, with the io_context perhaps gone.
void Authenticator::join() { pool_.join(); }

asio::awaitable<bool> Authenticator::verify(std::string user, std::string password) {
  // The check is a named local, not a temporary in the co_await expression (GCC 12 destroys such
  // temporaries twice). It wipes its own copy of the password on the pool thread.
  auto check = [users = users_.load(), user = std::move(user), secret = password]() mutable {
    const bool ok = users->verify(user, secret);
    OPENSSL_cleanse(secret.data(), secret.size());
    return ok;
  };
  const bool ok = co_await util::run_on<bool>(pool_, std::move(check));
  OPENSSL_cleanse(password.data(), password.size());
  co_return ok;
}

bool Authenticator::may_send_as(std::string_view user, std::string_view sender) const {
  return users_.load()->may_send_as(user, sender);
}

std::optional<std::string> Authenticator::reload() {
  if (users_file_.empty()) return std::string("no users file to reload");
  try {
    users_.store(load_users(users_file_));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

}  // namespace mailhop::server
