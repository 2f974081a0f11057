// Test helpers for the spool: a scratch directory, and running a coroutine to completion.
#pragma once

#include <unistd.h>

#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace spool_test {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("mailhop-spool-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Runs `a` on `io` until it finishes. io.run() returns only when no work is left, so this also
// shows that a pending spool operation keeps the io_context alive.
template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  std::optional<T> result;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result = std::move(value);
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

inline std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace spool_test
