// The state behind Spool, shared by spool.cpp (the operations) and recovery.cpp (the start-up
// scan). Internal to the spool module.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "committer.hpp"
#include "files.hpp"
#include "spare_files.hpp"
#include "mailhop/spool/spool.hpp"

namespace mailhop::spool {

struct Spool::Impl {
  explicit Impl(Options o)
      : options(std::move(o)), layout(options.root), spare(layout.spare, detail::SpareFiles::kDefaultCap, options.durable) {}
  ~Impl() { join(); }

  // Spool::join(); idempotent.
  void join() {
    pool.join();                      // appends and reads in flight finish first,
    if (committer) committer->join();  // then every queued commit is completed
  }

  Options options;
  detail::Layout layout;
  detail::Fd root_fd;  // for syncfs()
  detail::SpareFiles spare;  // recycled files (the committer and the pool share it)
  // Appends, reads and the preparation of commits: blocking calls off the network threads.
  boost::asio::thread_pool pool{2};
  std::unique_ptr<detail::Committer> committer;  // from open()
  std::atomic<unsigned long> tmp_sequence{0};
  // recover_temporaries() -> scan_queue(): the envelopes queued before this process started
  // (names in env/ when tmp/ was swept), so the scan never meets a message committed since.
  std::vector<std::string> old_envelopes;
  bool temporaries_recovered = false;

  void require_open() const;
};

}  // namespace mailhop::spool
