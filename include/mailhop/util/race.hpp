// Racing one read or write against a deadline timer, for the hot paths of the SMTP sessions and
// the relay client.
//
// Why not `co_await (op || timer.async_wait(...))`: Boost.Asio's awaitable operators co_spawn a
// coroutine for each operand, so every read and every write of every session cost two coroutine
// threads with their frames, executors and cancellation slots. A parallel group of two deferred
// operations does the same race with neither: the operations start directly, the first to
// finish cancels the other, and the group completes once both have (so the buffer and the timer
// are free again, as with `||`).
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>
#include <variant>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace mailhop::util {

// What `co_await (op || timer.async_wait(as_tuple(use_awaitable)))` gives: index 0 with the
// operation's result when it finished first, index 1 with the timer's when the deadline passed
// (or the timer was cancelled) first.
using IoOrTimer = std::variant<std::tuple<boost::system::error_code, std::size_t>, std::tuple<boost::system::error_code>>;

// `op` is a deferred operation completing with (error_code, std::size_t): e.g.
// `socket.async_read_some(buffer, boost::asio::deferred)`. The timer's expiry is the caller's.
template <typename DeferredIo>
boost::asio::awaitable<IoOrTimer> race(DeferredIo op, boost::asio::steady_timer& timer) {
  auto [order, io_error, bytes, timer_error] =
      co_await boost::asio::experimental::make_parallel_group(std::move(op), timer.async_wait(boost::asio::deferred))
          .async_wait(boost::asio::experimental::wait_for_one(), boost::asio::use_awaitable);
  if (order[0] == 0) co_return IoOrTimer{std::in_place_index<0>, io_error, bytes};
  co_return IoOrTimer{std::in_place_index<1>, timer_error};
}

}  // namespace mailhop::util
