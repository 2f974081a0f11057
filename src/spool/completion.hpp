// Handing a result from one of the spool's threads back to the coroutine that waits for it.
//
// The waiting operation's handler is type-erased (any_completion_handler) so it can sit in a
// queue; the executor it is associated with (the caller's io_context or strand) is kept with
// outstanding work tracked, so the caller's io_context does not run out of work and return
// while the disk is busy. complete() hands the handler to that executor: it never runs on the
// spool's threads. Internal to the spool module.
#pragma once

#include <utility>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailhop::spool::detail {

template <typename R>
class Completion {
 public:
  using Handler = boost::asio::any_completion_handler<void(R)>;

  Completion() = default;
  explicit Completion(Handler handler)
      : work_(boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                  boost::asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}

  Completion(Completion&&) = default;
  // Boost 1.81's any_completion_handler move assignment copies its argument as an lvalue,
  // which wraps the handler in itself without end: construct, never assign.
  Completion& operator=(Completion&&) = delete;

  explicit operator bool() const { return static_cast<bool>(handler_); }

  // Runs the handler with `result` on its own executor, then releases the work guard.
  void complete(R result) {
    auto executor = std::move(work_);
    // From a spool thread, dispatch() queues the handler on its executor: it never runs here.
    boost::asio::dispatch(executor, [h = std::move(handler_), r = std::move(result)]() mutable { std::move(h)(std::move(r)); });
  }

 private:
  boost::asio::any_completion_executor work_;
  Handler handler_;
};

// Awaits `f()` run on `pool`: the blocking call happens on a pool thread, the coroutine resumes
// on its own executor with the result.
template <typename R, typename F>
auto run_on(boost::asio::thread_pool& pool, F f) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
      [&pool](auto handler, F fn) {
        boost::asio::post(pool, [c = Completion<R>(std::move(handler)), fn = std::move(fn)]() mutable {
          c.complete(fn());
        });
      },
      boost::asio::use_awaitable, std::move(f));
}

}  // namespace mailhop::spool::detail
