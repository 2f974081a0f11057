// A store that fails (the disk is full) returns the error and leaves nothing of the message in
// the queue. The spool sits on a tiny tmpfs; the test is skipped when mount is not permitted.
#include <catch2/catch.hpp>

#include <sys/mount.h>

#include <cstring>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "helpers.hpp"
#include "mailhop/spool/spool.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace mailhop::spool;
using spool_test::count_files;
using spool_test::run;
using spool_test::ScratchDir;

namespace {

struct TinyTmpfs {
  fs::path path;
  bool mounted = false;
  explicit TinyTmpfs(const fs::path& p, const char* size) : path(p) {
    std::string options = std::string("size=") + size + ",mode=0700";
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!mounted) WARN("cannot mount a tmpfs (" << std::strerror(errno) << "): disk-full test skipped");
  }
  ~TinyTmpfs() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
};

Envelope make_envelope() {
  Envelope e;
  e.sender = "alice@example.org";
  e.recipients = {{"bob@example.com", RecipientState::pending, ""}};
  e.arrival = e.next_attempt = std::chrono::system_clock::now();
  return e;
}

void require_queue_empty(const fs::path& root) {
  CHECK(count_files(root / "tmp") == 0);
  CHECK(count_files(root / "msg") == 0);
  CHECK(count_files(root / "env") == 0);
}

}  // namespace

TEST_CASE("a store that fills the disk fails with ENOSPC and leaves nothing behind") {
  ScratchDir dir;
  TinyTmpfs disk(dir.path, "256k");
  if (!disk.mounted) return;

  asio::io_context io;
  Spool spool({dir.path, true});
  spool.recover();

  // Content larger than the file system: the append fails, and so does the commit.
  auto e = make_envelope();
  auto ec = run(io, spool.store(e, std::string(1024 * 1024, 'x')));
  CHECK(ec == std::errc::no_space_on_device);
  // The temporary is discarded on the spool's pool: wait for it with a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count_files(dir.path / "tmp") != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  require_queue_empty(dir.path);
  CHECK(spool.list().empty());
  CHECK(spool.stats().commits == 0);

  // A disk filled to the last byte by the content itself: the failed append makes the commit
  // fail too, and the partial content is removed.
  auto message = spool.begin();
  ec = run(io, [&]() -> asio::awaitable<std::error_code> {
    std::string chunk(4096, 'y');
    std::error_code ec;
    while (!ec) ec = co_await spool.append(*message, chunk);  // fill the disk up to the last byte
    co_return ec;
  }());
  REQUIRE(ec == std::errc::no_space_on_device);
  e = make_envelope();
  ec = run(io, spool.commit(*message, e));
  CHECK(ec == std::errc::no_space_on_device);
  message.reset();
  require_queue_empty(dir.path);

  // With room again, the spool works as before.
  e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, "fits\r\n")));
  CHECK(spool.read_content_sync(e.id) == "fits\r\n");
  CHECK(spool.list().size() == 1);
}
