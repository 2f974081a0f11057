// Awaiting blocking work done on a thread pool: the work runs on a pool thread, the awaiting
// coroutine resumes on its own executor with the result.
//
// Why not `co_await co_spawn(pool, …, use_awaitable)`: its entry point keeps a work-tracking copy
// of the caller's executor on the pool thread and releases it after the result is handed over,
// so the pool thread may still touch the caller's io_context when that has already been
// destroyed (AddressSanitizer: heap-use-after-free in ~basic_executor_type). Here the pool thread
// hands over the tracked executor with the result: it is released where the result is consumed.
#pragma once

#include <utility>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mailhop::util {

// A waiting operation's handler, kept while another thread works for it. It holds its executor
// with outstanding work tracked, so the caller's io_context does not run out of work and return
// while the work is in progress; complete() runs the handler on that executor, never on the
// thread that calls complete().
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

  // Queues the handler with `result` on its executor. The work guard travels with it and ends
  // on that executor; this thread keeps only an untracked copy, so nothing here touches the
  // caller's io_context once the handler is queued.
  void complete(R result) {
    auto target = boost::asio::prefer(work_, boost::asio::execution::outstanding_work.untracked);
    boost::asio::dispatch(target, [h = std::move(handler_), r = std::move(result), w = std::move(work_)]() mutable {
      std::move(h)(std::move(r));
    });
  }

 private:
  boost::asio::any_completion_executor work_;
  Handler handler_;
};

// Awaits `f()` run on `pool`; the coroutine resumes on its own executor with the result.
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

}  // namespace mailhop::util
