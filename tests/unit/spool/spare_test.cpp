// Recycled spool files (spare/): the pool itself (reuse only after a flush, cap, size limit,
// start-up stock), and the spool using it: inodes reused in the steady state, a recycled larger
// file cut to the new length, updates by exchange, removals without a flush, tmp/ leftovers
// recycled by recovery, and the two-phase start-up scan.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <set>

#include <boost/asio/io_context.hpp>

#include "../../../src/spool/spare_files.hpp"  // internal to the spool module: tested directly
#include "helpers.hpp"
#include "mailhop/spool/spool.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace mailhop::spool;
using mailhop::spool::detail::SpareFiles;
using spool_test::count_files;
using spool_test::run;
using spool_test::ScratchDir;

namespace {

void write(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

ino_t inode(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

std::set<ino_t> inodes_in(const fs::path& dir) {
  std::set<ino_t> out;
  for (auto& entry : fs::directory_iterator(dir)) out.insert(inode(entry.path()));
  return out;
}

Envelope make_envelope() {
  Envelope e;
  e.sender = "alice@example.org";
  e.recipients = {{"bob@example.com", RecipientState::pending, ""}};
  e.arrival = e.next_attempt = std::chrono::system_clock::now();
  e.client_host = "localhost";
  e.client_ip = "127.0.0.1";
  return e;
}

}  // namespace

TEST_CASE("a released file is handed out again only after the next flush, renamed and not truncated") {
  ScratchDir dir;
  fs::create_directory(dir.path / "spare");
  SpareFiles spare(dir.path / "spare", 8, /*durable=*/true);
  spare.load();

  write(dir.path / "old", "0123456789");
  const auto old_inode = inode(dir.path / "old");
  REQUIRE_FALSE(spare.release(dir.path / "old"));
  CHECK_FALSE(fs::exists(dir.path / "old"));
  CHECK(count_files(dir.path / "spare") == 1);
  CHECK(spare.counts().waiting == 1);

  // Not flushed yet: a new file is created instead.
  std::error_code ec;
  bool recycled = true;
  auto fd = spare.acquire(dir.path / "a", ec, &recycled);
  REQUIRE_FALSE(ec);
  CHECK_FALSE(recycled);
  CHECK(inode(dir.path / "a") != old_inode);
  fd.reset();

  // A release after the seal belongs to the next flush.
  auto generation = spare.seal();
  write(dir.path / "later", "x");
  REQUIRE_FALSE(spare.release(dir.path / "later"));
  spare.mark_flushed(generation);
  CHECK(spare.counts().ready == 1);
  CHECK(spare.counts().waiting == 1);

  fd = spare.acquire(dir.path / "b", ec, &recycled);
  REQUIRE_FALSE(ec);
  CHECK(recycled);
  CHECK(inode(dir.path / "b") == old_inode);
  REQUIRE(::write(fd.get(), "abc", 3) == 3);
  REQUIRE_FALSE(detail::finish_file(fd, 3));
  std::ifstream in(dir.path / "b", std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "abc");  // not "abc3456789"
  CHECK(spare.counts().reused == 1);
  CHECK(spare.counts().created == 1);
}

TEST_CASE("the pool keeps at most its cap, never large files, and takes stock at start-up") {
  ScratchDir dir;
  const fs::path pool = dir.path / "spare";
  fs::create_directory(pool);
  {
    SpareFiles spare(pool, 3, /*durable=*/false);
    spare.load();
    for (int i = 0; i < 5; ++i) {
      write(dir.path / "f", "data");
      REQUIRE_FALSE(spare.release(dir.path / "f"));
      CHECK_FALSE(fs::exists(dir.path / "f"));
    }
    CHECK(count_files(pool) == 3);
    CHECK(spare.counts().unlinked == 2);
    CHECK(spare.counts().ready == 3);  // not durable: ready at once
  }
  {
    SpareFiles spare(pool, 3, false);
    spare.load();
    write(dir.path / "big", std::string(SpareFiles::kMaxKeptBytes + 1, 'x'));
    REQUIRE_FALSE(spare.release(dir.path / "big"));  // full anyway, but also too big
    CHECK_FALSE(fs::exists(dir.path / "big"));
    CHECK(spare.release(dir.path / "missing", /*missing_ok=*/false) == std::errc::no_such_file_or_directory);
    CHECK_FALSE(spare.release(dir.path / "missing"));
  }
  // Start-up: the numbered files are ready; a stray name and what exceeds a smaller cap go.
  write(pool / "not-a-number", "x");
  SpareFiles spare(pool, 2, true);
  spare.load();
  CHECK(spare.counts().ready == 2);
  CHECK(count_files(pool) == 2);
  std::error_code ec;
  bool recycled = false;
  auto fd = spare.acquire(dir.path / "c", ec, &recycled);
  CHECK(recycled);  // files from the last run need no flush
}

TEST_CASE("a file is still released (unlinked) when spare/ is gone") {
  ScratchDir dir;
  SpareFiles spare(dir.path / "spare", 8, true);  // never created
  write(dir.path / "f", "data");
  CHECK_FALSE(spare.release(dir.path / "f"));
  CHECK_FALSE(fs::exists(dir.path / "f"));
  CHECK(spare.counts().unlinked == 1);
  CHECK(spare.counts().waiting == 0);
}

TEST_CASE("the steady state reuses inodes, and a recycled larger file keeps no old bytes") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, false});  // not durable: released files are ready at once
  spool.open();

  auto big = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(big, std::string(20000, 'B') + "\r\n")));
  const auto big_content_inode = inode(dir.path / "msg" / big.id.str());
  REQUIRE_FALSE(run(io, spool.remove(big.id)));
  CHECK(count_files(dir.path / "env") == 0);
  CHECK(count_files(dir.path / "msg") == 0);
  CHECK(count_files(dir.path / "spare") == 2);  // content and envelope kept for reuse

  // The next message gets the big one's content file (last released, first reused) and must
  // read back exactly, without the 20 KB that were there.
  auto small = make_envelope();
  const std::string text = "Subject: small\r\n\r\nhi\r\n";
  REQUIRE_FALSE(run(io, spool.store(small, text)));
  CHECK(inode(dir.path / "msg" / small.id.str()) == big_content_inode);
  CHECK(fs::file_size(dir.path / "msg" / small.id.str()) == text.size());
  CHECK(spool.read_content_sync(small.id) == text);
  auto loaded = spool.load(small.id);
  REQUIRE(loaded);
  CHECK(loaded->size == text.size());
  CHECK(count_files(dir.path / "spare") == 0);
  CHECK(spool.stats().files_recycled == 2);

  // Many messages through the spool: after the first, no file is created any more.
  for (int i = 0; i < 50; ++i) {
    auto e = make_envelope();
    REQUIRE_FALSE(run(io, spool.store(e, "message " + std::to_string(i) + "\r\n")));
    REQUIRE_FALSE(run(io, spool.remove(e.id)));
  }
  CHECK(spool.stats().files_created == 2 + 2);  // the big message's two files, then one pair
  CHECK(count_files(dir.path / "tmp") == 0);
}

TEST_CASE("an update exchanges the envelope; the old file goes to spare/, nothing stays in tmp/") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, "content\r\n")));
  const auto before = inode(dir.path / "env" / e.id.str());

  e.attempts = 1;
  e.recipients[0].state = RecipientState::sent;
  REQUIRE_FALSE(run(io, spool.update(e)));
  CHECK(inode(dir.path / "env" / e.id.str()) != before);
  CHECK(inodes_in(dir.path / "spare").contains(before));
  CHECK(count_files(dir.path / "tmp") == 0);
  auto loaded = spool.load(e.id);
  REQUIRE(loaded);
  CHECK(loaded->attempts == 1);
  CHECK(loaded->recipients[0].state == RecipientState::sent);

  // An update of a removed message fails and leaves nothing behind.
  REQUIRE_FALSE(run(io, spool.remove(e.id)));
  CHECK(run(io, spool.update(e)) == std::errc::no_such_file_or_directory);
  CHECK_FALSE(spool.contains(e.id));
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(run(io, spool.remove(e.id)) == std::errc::no_such_file_or_directory);
}

TEST_CASE("a removal is not flushed by itself; commits and updates are") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, "content\r\n")));
  const auto after_commit = spool.stats().flushes;
  CHECK(after_commit >= 1);

  e.attempts = 1;
  REQUIRE_FALSE(run(io, spool.update(e)));
  const auto after_update = spool.stats().flushes;
  CHECK(after_update > after_commit);

  REQUIRE_FALSE(run(io, spool.remove(e.id)));
  CHECK(spool.stats().flushes == after_update);
  CHECK(spool.stats().removes == 1);
  CHECK_FALSE(spool.contains(e.id));
  CHECK_FALSE(fs::exists(dir.path / "msg" / e.id.str()));
}

TEST_CASE("recovery recycles tmp/ leftovers and orphan content into spare/") {
  ScratchDir dir;
  {
    Spool spool({dir.path, false});
    spool.open();
  }
  write(dir.path / "tmp" / (QueueId::generate().str() + ".msg"), "half a message");
  write(dir.path / "tmp" / (QueueId::generate().str() + ".env.3"), "mailhop-envelope 1\n");
  auto orphan = QueueId::generate();
  write(dir.path / "msg" / orphan.str(), "orphan\r\n");
  const auto orphan_inode = inode(dir.path / "msg" / orphan.str());

  Spool spool({dir.path, true});
  auto report = spool.recover();
  CHECK(report.temporaries_removed == 3);
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(count_files(dir.path / "msg") == 0);
  CHECK(count_files(dir.path / "spare") == 3);
  CHECK(inodes_in(dir.path / "spare").contains(orphan_inode));
  CHECK(fs::is_directory(dir.path / "spare"));
  CHECK((fs::status(dir.path / "spare").permissions() & fs::perms::all) == fs::perms::owner_all);
}

TEST_CASE("the two-phase scan hands over exactly the old queue while new mail is committed") {
  ScratchDir dir;
  std::set<std::string> old_ids;
  {
    asio::io_context io;
    Spool spool({dir.path, false});
    spool.open();
    for (int i = 0; i < 30; ++i) {
      auto e = make_envelope();
      REQUIRE_FALSE(run(io, spool.store(e, "old " + std::to_string(i) + "\r\n")));
      old_ids.insert(e.id.str());
    }
  }
  write(dir.path / "tmp" / (QueueId::generate().str() + ".msg"), "leftover");
  write(dir.path / "env" / QueueId::generate().str(), "damaged");

  asio::io_context io;
  Spool spool({dir.path, false});
  auto first = spool.recover_temporaries();
  CHECK(first.temporaries_removed == 1);
  CHECK(count_files(dir.path / "tmp") == 0);

  // New mail arrives before the old queue is read; the scan never reports it.
  auto fresh = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(fresh, "new\r\n")));

  std::set<std::string> seen;
  std::size_t calls = 0, removed_during_scan = 0;
  auto report = spool.scan_queue(
      [&](std::vector<Envelope>& batch) {
        ++calls;
        CHECK(batch.size() <= 7);
        for (auto& e : batch) {
          CHECK(seen.insert(e.id.str()).second);
          // Delivery of an earlier batch may remove messages while the scan goes on.
          if (removed_during_scan < 5) {
            REQUIRE_FALSE(run(io, spool.remove(e.id)));
            ++removed_during_scan;
          }
        }
      },
      7);
  CHECK(seen == old_ids);
  CHECK(report.scanned == old_ids.size());
  CHECK(calls >= 30 / 7);
  CHECK(report.quarantined.size() == 1);
  CHECK(spool.contains(fresh.id));
  CHECK(spool.list().size() == old_ids.size() - 5 + 1);
}
