// The spool's operations on a real file system: store/commit, load, read back, update, remove,
// group commit under concurrency, and where completions resume.
#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "helpers.hpp"
#include "mailhop/spool/spool.hpp"

namespace asio = boost::asio;
using namespace mailhop::spool;
using spool_test::count_files;
using spool_test::run;
using spool_test::ScratchDir;

namespace {

Envelope make_envelope(std::string sender = "alice@example.org") {
  Envelope e;
  e.sender = std::move(sender);
  e.recipients = {{"bob@example.com", RecipientState::pending, ""}, {"carol@example.com", RecipientState::pending, ""}};
  e.arrival = e.next_attempt = std::chrono::system_clock::now();
  e.client_host = "localhost";
  e.client_ip = "127.0.0.1";
  return e;
}

using namespace std::string_literals;
const std::string kContent =
    "Received: from localhost\r\nSubject: test\r\n\r\n.leading dot, not stuffed\r\n\x00\xff binary\r\nlast line\r\n"s;

}  // namespace

TEST_CASE("a message received in chunks is committed and reads back byte for byte") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();

  auto message = spool.begin();
  auto e = make_envelope();
  auto ec = run(io, [&]() -> asio::awaitable<std::error_code> {
    for (std::size_t i = 0; i < kContent.size(); i += 7)
      if (auto ec = co_await spool.append(*message, kContent.substr(i, 7))) co_return ec;
    co_return co_await spool.commit(*message, e);
  }());
  REQUIRE_FALSE(ec);
  CHECK(e.id == message->id());
  CHECK(e.size == kContent.size());
  CHECK(message->size() == kContent.size());

  std::string error;
  auto loaded = spool.load(e.id, &error);
  INFO(error);
  REQUIRE(loaded);
  CHECK(loaded->sender == "alice@example.org");
  CHECK(loaded->recipients.size() == 2);
  CHECK(loaded->size == kContent.size());
  CHECK(spool.read_content_sync(e.id) == kContent);

  // Asynchronous reads in pieces, then an empty string at the end.
  auto pieces = run(io, [&]() -> asio::awaitable<std::string> {
    std::string all;
    for (std::uint64_t offset = 0;;) {
      auto [ec, chunk] = co_await spool.read_content(e.id, offset, 10);
      if (ec) throw std::system_error(ec);
      if (chunk.empty()) break;
      offset += chunk.size();
      all += chunk;
    }
    co_return all;
  }());
  CHECK(pieces == kContent);

  // Nothing is left in tmp/; content and envelope are in place.
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(std::filesystem::exists(dir.path / "msg" / e.id.str()));
  CHECK(std::filesystem::exists(dir.path / "env" / e.id.str()));
  CHECK(spool.stats().commits == 1);
  CHECK(spool.stats().flushes == 2);  // alone: its data (syncfs), then its entry in env/ (fsync)
}

TEST_CASE("a commit can carry the last part of the content: it is appended, counted and committed") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();

  const std::string head = kContent.substr(0, 10);
  const std::string tail = kContent.substr(10);
  auto message = spool.begin();
  auto e = make_envelope();
  auto ec = run(io, [&]() -> asio::awaitable<std::error_code> {
    if (auto ec = co_await spool.append(*message, head)) co_return ec;
    co_return co_await spool.commit(*message, tail, e);
  }());
  REQUIRE_FALSE(ec);
  CHECK(e.size == kContent.size());
  auto loaded = spool.load(e.id);
  REQUIRE(loaded);
  CHECK(loaded->size == kContent.size());
  CHECK(spool.read_content_sync(e.id) == kContent);

  // The whole message as the tail, nothing appended before (how a small message is stored).
  auto whole = spool.begin();
  auto f = make_envelope();
  REQUIRE_FALSE(run(io, spool.commit(*whole, kContent, f)));
  CHECK(f.size == kContent.size());
  CHECK(spool.read_content_sync(f.id) == kContent);
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(spool.stats().commits == 2);
}

TEST_CASE("store keeps a message made in memory, and list returns messages oldest first") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  std::vector<QueueId> ids;
  for (int i = 0; i < 3; ++i) {
    auto e = make_envelope("sender" + std::to_string(i) + "@example.org");
    REQUIRE_FALSE(run(io, spool.store(e, "message " + std::to_string(i) + "\r\n")));
    ids.push_back(e.id);
  }
  auto all = spool.list();
  REQUIRE(all.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(all[i].id == ids[i]);
    CHECK(all[i].sender == "sender" + std::to_string(i) + "@example.org");
    CHECK(spool.read_content_sync(ids[i]) == "message " + std::to_string(i) + "\r\n");
  }
  auto [ec, none] = run(io, spool.read_content(QueueId::generate(), 0, 100));
  CHECK(ec == std::errc::no_such_file_or_directory);
}

TEST_CASE("an update replaces the envelope atomically; readers never see a partial file") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, kContent)));

  // A reader loads the envelope again and again while 200 updates replace it. With an in-place
  // rewrite it would sooner or later see a truncated file; with temp + rename, every read is a
  // whole envelope, old or new, and attempts never go backwards.
  std::atomic<bool> done{false};
  std::atomic<int> bad_reads{0}, reads{0};
  std::thread reader([&] {
    unsigned last = 0;
    while (!done) {
      std::string error;
      auto loaded = spool.load(e.id, &error);
      ++reads;
      if (!loaded || loaded->attempts < last) ++bad_reads;
      else last = loaded->attempts;
    }
  });
  auto ec = run(io, [&]() -> asio::awaitable<std::error_code> {
    for (unsigned i = 1; i <= 200; ++i) {
      e.attempts = i;
      e.recipients[0].state = i % 2 ? RecipientState::sent : RecipientState::pending;
      e.last_error = "451 4.3.0 attempt " + std::to_string(i);
      if (auto ec = co_await spool.update(e)) co_return ec;
    }
    co_return std::error_code();
  }());
  done = true;
  reader.join();
  REQUIRE_FALSE(ec);
  CHECK(reads > 0);
  CHECK(bad_reads == 0);
  auto loaded = spool.load(e.id);
  REQUIRE(loaded);
  CHECK(loaded->attempts == 200);
  CHECK(loaded->last_error == "451 4.3.0 attempt 200");
  CHECK(loaded->recipients[0].state == RecipientState::pending);
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(spool.read_content_sync(e.id) == kContent);  // content is never touched by an update
  CHECK(spool.stats().updates == 200);
}

TEST_CASE("remove takes content and envelope away; an update never resurrects a removed message") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, kContent)));
  REQUIRE_FALSE(run(io, spool.remove(e.id)));
  CHECK_FALSE(spool.load(e.id));
  CHECK_FALSE(spool.read_content_sync(e.id));
  CHECK(count_files(dir.path / "env") == 0);
  CHECK(count_files(dir.path / "msg") == 0);
  CHECK(run(io, spool.remove(e.id)) == std::errc::no_such_file_or_directory);
  CHECK(run(io, spool.update(e)) == std::errc::no_such_file_or_directory);
  CHECK(count_files(dir.path / "env") == 0);
  CHECK(count_files(dir.path / "tmp") == 0);
}

TEST_CASE("an update and a removal of one message in flight together: removed, never brought back") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  // Whether the two meet in one round of the committer, or the removal overtakes the update
  // (which first writes its temporary on the pool), depends on timing: repeated, and every
  // interleaving must end with the message gone and nothing left in tmp/.
  for (int i = 0; i < 20; ++i) {
    auto e = make_envelope();
    REQUIRE_FALSE(run(io, spool.store(e, kContent)));
    e.attempts = 1;
    const auto pending = std::make_error_code(std::errc::interrupted);
    std::error_code updated = pending, removed = pending;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { updated = co_await spool.update(e); }, asio::detached);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { removed = co_await spool.remove(e.id); }, asio::detached);
    io.restart();
    io.run();
    CHECK_FALSE(removed);
    CHECK((!updated || updated == std::errc::no_such_file_or_directory));  // before the removal, or found it gone
    CHECK_FALSE(spool.contains(e.id));
    CHECK_FALSE(std::filesystem::exists(dir.path / "msg" / e.id.str()));
  }
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(spool.list().empty());
}

TEST_CASE("a message dropped before commit leaves nothing behind") {
  ScratchDir dir;
  {
    asio::io_context io;
    Spool spool({dir.path, true});
    spool.open();
    auto message = spool.begin();
    REQUIRE_FALSE(run(io, spool.append(*message, kContent)));
    CHECK(count_files(dir.path / "tmp") == 1);
    message.reset();
  }  // the spool finishes its pending work (the discard) before it is gone
  CHECK(count_files(dir.path / "tmp") == 0);
  CHECK(count_files(dir.path / "msg") == 0);
  CHECK(count_files(dir.path / "env") == 0);
}

TEST_CASE("many concurrent commits all complete, on their own threads, sharing flushes") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();

  constexpr int kMessages = 200;
  std::atomic<int> ok{0}, wrong_thread{0};
  std::vector<std::thread::id> io_threads(2);
  for (int i = 0; i < kMessages; ++i)
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto e = make_envelope("s" + std::to_string(i) + "@example.org");
          auto message = spool.begin();
          auto ec = co_await spool.append(*message, kContent);
          if (!ec) ec = co_await spool.commit(*message, e);
          // Resumed on an io_context thread, never on a spool thread.
          auto me = std::this_thread::get_id();
          if (me != io_threads[0] && me != io_threads[1]) ++wrong_thread;
          if (!ec) ++ok;
        },
        asio::detached);
  io_threads[0] = std::this_thread::get_id();
  std::latch second_known(1);
  std::thread second([&] {
    io_threads[1] = std::this_thread::get_id();
    second_known.count_down();
    io.run();
  });
  second_known.wait();  // both ids are known before this thread resumes anything
  io.run();
  second.join();

  CHECK(ok == kMessages);
  CHECK(wrong_thread == 0);
  auto stats = spool.stats();
  CHECK(stats.commits == kMessages);
  CHECK(stats.failures == 0);
  INFO("flushes: " << stats.flushes << " for " << stats.commits << " commits");
  CHECK(stats.flushes >= 1);
  CHECK(stats.flushes < stats.commits / 2);  // group commit: one flush covered many messages
  CHECK(spool.list().size() == kMessages);
}

TEST_CASE("without durability nothing is flushed, and messages are still stored") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, false});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, kContent)));
  CHECK(spool.load(e.id));
  CHECK(spool.stats().commits == 1);
  CHECK(spool.stats().flushes == 0);
}

TEST_CASE("join(): operations in flight are handed over to an io_context that no longer runs") {
  ScratchDir dir;
  asio::io_context io;
  Spool spool({dir.path, true});
  spool.open();
  auto e = make_envelope();
  REQUIRE_FALSE(run(io, spool.store(e, kContent)));

  // One operation for the pool, one for the committer; io.poll() starts both, then io is left
  // alone, as by an owner that stopped it with work in flight.
  auto message = spool.begin();
  std::optional<std::error_code> appended, removed;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { appended = co_await spool.append(*message, kContent); },
                 asio::detached);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { removed = co_await spool.remove(e.id); }, asio::detached);
  io.restart();
  io.poll();
  spool.join();  // returns once both results are queued on io
  io.poll();     // so this runs them, without waiting for anything
  CHECK(appended == std::error_code{});
  CHECK(removed == std::error_code{});
  CHECK_FALSE(spool.contains(e.id));
}
