// The admin API's routing and handlers, without Beast: a request in, a response out
// (src/admin/http_server.cpp translates). Internal to the admin module.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "mailhop/admin/server.hpp"

namespace mailhop::admin::detail {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/api/queue?x" (a query is ignored)
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  // for 405
};

// The configuration one request works with, and since when its relay settings hold (a
// next-hop record from before that moment is about another next hop).
struct Settings {
  std::shared_ptr<const config::Config> config;
  std::chrono::system_clock::time_point relay_since{};
};

// What the handlers share; lives as long as the server.
struct Context {
  AdminDeps deps;  // deps.config: the start-up configuration (admin.listen, admin.token_file)

  // Thread-safe: SIGHUP replaces the settings while requests run on other threads; each
  // request reads one snapshot.
  Settings settings() const;
  void reconfigure(std::shared_ptr<const config::Config> next);

  boost::asio::thread_pool disk{1};  // blocking spool reads and the readiness write probe
  std::atomic<std::int64_t> last_tick{0};  // heartbeat: steady_clock ns of the last tick

 private:
  mutable std::mutex mutex_;
  Settings settings_;  // the first reconfigure() sets it (to deps.config)
};

boost::asio::awaitable<Response> handle(std::shared_ptr<Context> context, Request request);

Response json_error(int status, std::string message);

}  // namespace mailhop::admin::detail
