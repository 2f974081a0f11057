// Recycled spool files: root/spare/ keeps the files of finished messages so that new
// temporaries reuse their inodes instead of creating new ones.
//
// Why: ext4's inode allocator scans the block group's bitmap and, for every free bit, reads the
// on-disk inode to skip those freed in the last seconds (recently_deleted). A spool that creates
// and unlinks several files per message fills its group with exactly such inodes, and every new
// create got slower with the message rate: 58 % of mailhop's CPU in the first benchmark
// (docs/performance.md). A rename allocates nothing, and overwriting a file's existing blocks
// allocates nothing either, so the steady state allocates no inodes and frees none.
//
// acquire() renames a ready spare file to the temporary's name and opens it for writing without
// truncating it (the writer truncates to the length it wrote: finish_file()); when none is
// ready it creates a new file (O_CREAT|O_EXCL). release() renames a file into spare/ (or unlinks
// it beyond the cap).
//
// A released file is not handed out again until the spool's next flush (mark_flushed()): until
// then the rename that took it out of env/ or msg/ may not be on stable storage, and reusing it
// for another message first could, on a file system that does not commit metadata in order,
// bring the old name back after a crash pointing at the new bytes. Not on ext4 (one ordered
// journal), but the rule costs one batch of delay and nothing else.
//
// Spare files keep old messages' bytes: they are in the spool's private 0700 directory, never
// read as messages (recovery only counts and trims them). Names are decimal numbers.
// Thread-safe. Internal to the spool module.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "files.hpp"

namespace mailhop::spool::detail {

class SpareFiles {
 public:
  static constexpr std::size_t kDefaultCap = 2048;
  // Larger files are unlinked, not kept: the pool holds their blocks, and a few big messages
  // must not keep hundreds of MiB of disk (at most cap x this: 512 MiB; 8 MiB for 4 KiB mail).
  static constexpr std::uint64_t kMaxKeptBytes = 256 * 1024;

  SpareFiles(std::filesystem::path dir, std::size_t cap, bool durable);

  // Start-up: takes stock of spare/ (files left by the last run are ready: a restart is a
  // flush boundary as good as any, since the old names' state is whatever the disk holds now),
  // unlinks what is beyond the cap or not a plain numbered file. Not concurrent with the rest.
  void load();

  // A file named `target` opened O_WRONLY, recycled when possible. `recycled` says which.
  Fd acquire(const std::filesystem::path& target, std::error_code& ec, bool* recycled = nullptr);
  // Moves `path` into spare/, or unlinks it when the pool is full or the file is larger than
  // kMaxKeptBytes (or not a regular file). A missing `path` is an error (ENOENT) only when not
  // `missing_ok`.
  std::error_code release(const std::filesystem::path& path, bool missing_ok = true);

  // The committer's flush protocol: seal() before a flush (the files released so far), then
  // mark_flushed(the sealed generation) once that flush succeeded: those files become ready.
  std::uint64_t seal();
  void mark_flushed(std::uint64_t generation);

  struct Counts {
    std::size_t ready = 0;
    std::size_t waiting = 0;  // released, not flushed yet
    std::uint64_t reused = 0;  // acquisitions served by a spare file
    std::uint64_t created = 0;  // acquisitions that had to create a file
    std::uint64_t unlinked = 0;  // releases beyond the cap
  };
  Counts counts() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path name_of(std::uint64_t n) const { return dir_ / std::to_string(n); }

  std::filesystem::path dir_;
  std::size_t cap_;
  bool durable_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> ready_;  // used last in, first out: the most recently cached inodes
  struct Waiting {
    std::uint64_t name;
    std::uint64_t generation;
  };
  std::vector<Waiting> waiting_;
  std::uint64_t next_name_ = 0;
  std::uint64_t generation_ = 1;  // releases now belong to this generation
  std::size_t in_flight_ = 0;     // releases that reserved a slot and are renaming
  std::uint64_t reused_ = 0, created_ = 0, unlinked_ = 0;
};

// After the last write to a file from acquire(): cut it at `length` (a recycled file may be
// longer) and close it. Both errors count.
std::error_code finish_file(Fd& fd, std::uint64_t length);

// write_new_file for the recycling spool: acquire `path`, write `data`, finish.
std::error_code write_recycled_file(SpareFiles& spare, const std::filesystem::path& path, std::string_view data);

}  // namespace mailhop::spool::detail
