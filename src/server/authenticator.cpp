// Password checks off the network threads, and the users file reload (see authenticator.hpp).
#include "mailhop/server/authenticator.hpp"

#include <openssl/crypto.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

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

// A free function taking its arguments by value (a capturing lambda given to co_spawn and
// awaited double-frees its captures with GCC 12).
asio::awaitable<bool> verify_on_pool(std::shared_ptr<const UsersFile> users, std::string user, std::string password) {
  const bool ok = users->verify(user, password);
  OPENSSL_cleanse(password.data(), password.size());
  co_return ok;
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

asio::awaitable<bool> Authenticator::verify(std::string user, std::string password) {
  auto users = users_.load();
  const bool ok = co_await asio::co_spawn(pool_, verify_on_pool(std::move(users), std::move(user), password),
                                          asio::use_awaitable);
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
