// Queue IDs: unique, ordered by creation, and parse() accepts only what generate() makes.
#include <catch2/catch.hpp>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "mailhop/spool/queue_id.hpp"

using mailhop::spool::QueueId;

TEST_CASE("queue IDs are unique and strictly increasing within a process") {
  std::vector<QueueId> ids;
  for (int i = 0; i < 100000; ++i) ids.push_back(QueueId::generate());
  for (std::size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i - 1] < ids[i]);
  // The string order is the same order: file listings sort by arrival.
  for (std::size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i - 1].str() < ids[i].str());
}

TEST_CASE("queue IDs made by several threads at once are unique") {
  std::mutex mutex;
  std::set<std::string> all;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 20000; ++i) mine.push_back(QueueId::generate().str());
      std::lock_guard lock(mutex);
      all.insert(mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  CHECK(all.size() == 80000);
}

TEST_CASE("a queue ID has a fixed length of upper-case hex digits and parses back") {
  auto id = QueueId::generate();
  CHECK(id.str().size() == 26);
  CHECK(id.str().find_first_not_of("0123456789ABCDEF") == std::string::npos);
  auto parsed = QueueId::parse(id.str());
  REQUIRE(parsed);
  CHECK(*parsed == id);
}

TEST_CASE("QueueId::parse is strict") {
  auto good = QueueId::generate().str();
  CHECK(QueueId::parse(good));
  std::string lower = good;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower != good) CHECK_FALSE(QueueId::parse(lower));
  CHECK_FALSE(QueueId::parse(""));
  CHECK_FALSE(QueueId::parse(good.substr(1)));
  CHECK_FALSE(QueueId::parse(good + "0"));
  CHECK_FALSE(QueueId::parse("../../../../etc/passwd....."));
  CHECK_FALSE(QueueId::parse(std::string(25, 'A') + "G"));
  CHECK_FALSE(QueueId::parse(std::string(25, 'A') + "/"));
  CHECK_FALSE(QueueId::parse(std::string(25, 'A') + '\0'));
  CHECK(QueueId::parse(std::string(26, 'F')));
}
