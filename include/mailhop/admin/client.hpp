// A small synchronous HTTP client for the admin API, for the command line (`mailhop queue …`
// and `mailhop health` while the daemon runs): one request to admin.listen with the bearer
// token from admin.token_file, a deadline for the whole exchange.
#pragma once

#include <chrono>
#include <string>

#include "mailhop/config/config.hpp"

namespace mailhop::admin {

struct ClientResponse {
  int status = 0;     // 0 when there was no answer (then `error` says why)
  std::string body;
  std::string error;  // connection or protocol failure, in words
};

// method: "GET", "POST", "DELETE"; target: "/api/queue".
ClientResponse request(const config::Config& config, const std::string& method, const std::string& target,
                       std::chrono::milliseconds deadline = std::chrono::seconds(30));

}  // namespace mailhop::admin
