// The start-up scan: leftovers removed, damaged envelopes quarantined with their content,
// orphan content recycled, intact messages returned oldest first.
#include <catch2/catch.hpp>

#include <fstream>

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

void write(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

Envelope make_envelope(std::uint64_t size) {
  Envelope e;
  e.sender = "alice@example.org";
  e.recipients = {{"bob@example.com", RecipientState::pending, ""}};
  e.arrival = e.next_attempt = std::chrono::system_clock::now();
  e.size = size;
  return e;
}

}  // namespace

TEST_CASE("recovery keeps intact messages and sets aside or removes everything else") {
  ScratchDir dir;
  std::vector<QueueId> good;
  {
    asio::io_context io;
    Spool spool({dir.path, false});
    spool.open();
    for (int i = 0; i < 3; ++i) {
      auto e = make_envelope(0);
      REQUIRE_FALSE(run(io, spool.store(e, "message " + std::to_string(i) + "\r\n")));
      good.push_back(e.id);
    }
  }
  const fs::path env = dir.path / "env", msg = dir.path / "msg", tmp = dir.path / "tmp";

  // What a crash leaves: content and envelope temporaries of stores that never committed.
  write(tmp / (QueueId::generate().str() + ".msg"), "half a message");
  write(tmp / (QueueId::generate().str() + ".env.7"), "mailhop-envelope 1\nid: ");
  // Uncommitted content: no envelope was ever renamed into place.
  auto orphan = QueueId::generate();
  write(msg / orphan.str(), "orphan\r\n");
  // Garbage under a valid name, with content.
  auto garbage = QueueId::generate();
  write(env / garbage.str(), "\x7f" "ELF\x01\x02 not an envelope at all");
  write(msg / garbage.str(), "content of the garbage envelope\r\n");
  // A truncated envelope: a whole valid one without its end record.
  auto truncated = make_envelope(8);
  auto text = serialize(truncated);
  write(env / truncated.id.str(), text.substr(0, text.size() - 4));
  write(msg / truncated.id.str(), "12345678");
  // An envelope whose content is missing.
  auto missing = make_envelope(10);
  write(env / missing.id.str(), serialize(missing));
  // An envelope whose content has another size.
  auto wrong_size = make_envelope(1000);
  write(env / wrong_size.id.str(), serialize(wrong_size));
  write(msg / wrong_size.id.str(), "short\r\n");
  // An envelope that names another message than its file name.
  auto misnamed = make_envelope(3);
  auto other = QueueId::generate();
  write(env / other.str(), serialize(misnamed));
  write(msg / other.str(), "abc");
  // A file that has no business in env/ (an editor's backup).
  write(env / (good[0].str() + "~"), serialize(make_envelope(0)));

  Spool spool({dir.path, true});
  RecoveryReport report;
  REQUIRE_NOTHROW(report = spool.recover());

  REQUIRE(report.queued.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(report.queued[i].id == good[i]);
  CHECK(report.temporaries_removed == 3);  // two in tmp/, one orphan content
  CHECK(report.quarantined.size() == 6);
  auto mentions = [&](const QueueId& id, std::string_view why) {
    for (const auto& q : report.quarantined)
      if (q.find(id.str()) != std::string::npos && q.find(why) != std::string::npos) return true;
    return false;
  };
  CHECK(mentions(garbage, "not a mailhop envelope"));
  CHECK(mentions(truncated.id, "no end record"));
  CHECK(mentions(missing.id, "missing"));
  CHECK(mentions(wrong_size.id, "1000"));
  CHECK(mentions(other, "another queue ID"));

  CHECK(count_files(tmp) == 0);
  CHECK(count_files(env) == 3);
  CHECK(count_files(msg) == 3);
  CHECK_FALSE(fs::exists(msg / orphan.str()));
  const fs::path corrupt = dir.path / "corrupt";
  CHECK(fs::exists(corrupt / (garbage.str() + ".env")));
  CHECK(fs::exists(corrupt / (garbage.str() + ".msg")));  // content set aside with its envelope
  CHECK(fs::exists(corrupt / (truncated.id.str() + ".env")));
  CHECK(fs::exists(corrupt / (missing.id.str() + ".env")));
  CHECK(fs::exists(corrupt / (wrong_size.id.str() + ".msg")));
  CHECK(fs::exists(corrupt / (good[0].str() + "~.env")));

  // The spool works on after recovery, and a second scan finds nothing more to do.
  asio::io_context io;
  auto e = make_envelope(0);
  REQUIRE_FALSE(run(io, spool.store(e, "after recovery\r\n")));
  auto again = spool.recover();
  CHECK(again.queued.size() == 4);
  CHECK(again.quarantined.empty());
  CHECK(again.temporaries_removed == 0);
}

TEST_CASE("recovery of an empty or new spool creates the layout") {
  ScratchDir dir;
  Spool spool({dir.path / "new" / "spool", true});
  auto report = spool.recover();
  CHECK(report.queued.empty());
  for (auto sub : {"tmp", "msg", "env", "corrupt", "spare"}) CHECK(fs::is_directory(dir.path / "new" / "spool" / sub));
}

TEST_CASE("a second quarantine of the same name does not overwrite the first") {
  ScratchDir dir;
  Spool spool({dir.path, false});
  spool.open();
  auto id = QueueId::generate();
  write(dir.path / "env" / id.str(), "first");
  spool.recover();
  write(dir.path / "env" / id.str(), "second");
  spool.recover();
  CHECK(fs::exists(dir.path / "corrupt" / (id.str() + ".env")));
  CHECK(fs::exists(dir.path / "corrupt" / (id.str() + ".env.1")));
}

TEST_CASE("recovery of a long queue (checked by several threads) keeps order and verdicts") {
  ScratchDir dir;
  Spool spool({dir.path, false});
  spool.open();
  std::vector<QueueId> good, bad;
  for (int i = 0; i < 1500; ++i) {
    auto e = make_envelope(4);
    write(dir.path / "env" / e.id.str(), serialize(e));
    // Every 100th message has lost bytes of its content.
    write(dir.path / "msg" / e.id.str(), i % 100 == 7 ? "abc" : "abcd");
    (i % 100 == 7 ? bad : good).push_back(e.id);
  }
  auto report = spool.recover();
  REQUIRE(report.queued.size() == good.size());
  for (std::size_t i = 0; i < good.size(); ++i) CHECK(report.queued[i].id == good[i]);
  CHECK(report.quarantined.size() == bad.size());
  for (const auto& id : bad) CHECK(fs::exists(dir.path / "corrupt" / (id.str() + ".env")));
}
