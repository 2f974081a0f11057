// The state behind Spool, shared by spool.cpp (the operations) and recovery.cpp (the start-up
// scan). Internal to the spool module.
#pragma once

#include <atomic>
#include <memory>

#include <boost/asio/thread_pool.hpp>

#include "committer.hpp"
#include "files.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::spool {

struct Spool::Impl {
  explicit Impl(Options o) : options(std::move(o)), layout(options.root) {}
  ~Impl() {
    pool.join();        // appends and reads in flight finish first,
    committer.reset();  // then every queued commit is completed
  }

  Options options;
  detail::Layout layout;
  detail::Fd root_fd;  // for syncfs()
  // Appends, reads and the preparation of commits: blocking calls off the network threads.
  boost::asio::thread_pool pool{2};
  std::unique_ptr<detail::Committer> committer;  // from open()
  std::atomic<unsigned long> tmp_sequence{0};

  void require_open() const;
};

}  // namespace mailhop::spool
