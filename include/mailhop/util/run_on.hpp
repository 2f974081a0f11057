// Handing a result from another thread back to the coroutine that waits for it: the work runs
// on a pool thread (run_on) or on a thread of its own (the spool's committer, via Completion),
// the awaiting coroutine resumes on its own executor with the result. Used by the spool's pool
// and committer and by the password checks (the admin API's disk pool and `mailhop sink` still
// await co_spawn on their pools).
//
// Why not `co_await co_spawn(pool, …, use_awaitable)`: a coroutine frame per call, and no safer.
// Its entry point, like complete() here, holds a tracked copy of the caller's executor on the
// pool thread until after the hand-over. The heap-use-after-free ASan once reported there (a
// password-check pool thread in ~basic_executor_type on a destroyed io_context) needs an
// io_context stopped and destroyed with a check in flight, which no completion mechanism can
// make safe: the owner joins the completing thread first (see Completion). The server tests'
// harness destroyed its io_context before the Authenticator; it now joins it first.
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

// A waiting operation's handler, kept while another thread works for it. The handler is
// type-erased (any_completion_handler) so it can sit in a queue. It holds its executor with
// outstanding work tracked, so the caller's io_context does not run out of work and return
// while the work is in progress; complete() runs the handler on that executor, never on the
// thread that calls complete().
//
// Lifetime rule for owners: the thread that calls complete() touches the caller's io_context
// until complete() returns. A tracked guard keeps io_context::run() from returning before
// that, but not an io_context that is stopped (stop(), run_for()) and destroyed with work
// outstanding: the owner of the completing thread (a thread_pool, the committer) must join it
// before the io_context it completes to is destroyed.
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

  // Queues the handler with `result` on its executor, then releases the work guard, here, after
  // the hand-over has returned. Why not let the guard travel with the handler: queueing from a
  // foreign thread ends in Asio's scheduler::wake_one_thread_and_unlock() ->
  // posix_event::maybe_unlock_and_signal_one() (Boost 1.81), which unlocks the scheduler's
  // mutex and only THEN calls pthread_cond_signal(). Meanwhile the
  // io_context thread can run the handler, release the last work, return from run(), and the
  // io_context be destroyed while this thread is still signalling its condition variable
  // (ThreadSanitizer: data race in posix_event::~posix_event; a use-after-free in principle).
  // With the guard held here, run() cannot return before this thread's work_finished(), which
  // stops the scheduler under its mutex, after dispatch() has returned.
  void complete(R result) {
    auto executor = std::move(work_);
    // From another thread, dispatch() queues the handler on its executor: it never runs here.
    boost::asio::dispatch(executor, [h = std::move(handler_), r = std::move(result)]() mutable {
      std::move(h)(std::move(r));
    });
  }  // `executor` released: the last touch of the caller's io_context from this thread

 private:
  boost::asio::any_completion_executor work_;
  Handler handler_;
};

// Awaits `f()` run on `pool`; the coroutine resumes on its own executor with the result.
// The pool must be joined before the caller's io_context is destroyed (see Completion).
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
