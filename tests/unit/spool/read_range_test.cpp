// detail::read_range: the content reader behind Spool::read_content, in both its modes (from
// the caches only, on a network thread; and the ordinary blocking read on a spool thread).
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "../../../src/spool/files.hpp"  // internal to the spool module: tested directly
#include "helpers.hpp"

namespace fs = std::filesystem;
using mailhop::spool::detail::read_range;
using spool_test::ScratchDir;

namespace {

void write(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

}  // namespace

TEST_CASE("read_range reads any range of a file, in both modes, and an empty string past its end") {
  ScratchDir dir;
  const auto path = dir.path / "content";
  const auto data = pattern(100'000);
  write(path, data);

  for (bool cached_only : {false, true}) {
    INFO("cached_only " << cached_only);
    // Just written, so in the page cache: the cached mode reads it too, without falling back.
    auto [ec, whole] = read_range(path, 0, 1 << 20, cached_only);
    if (cached_only && ec == std::errc::operation_would_block) {
      // A kernel before 5.12, or a file system without RWF_NOWAIT: the spool thread reads instead.
      WARN("no cached reads here (openat2 RESOLVE_CACHED / RWF_NOWAIT): only the blocking mode is checked");
      continue;
    }
    REQUIRE_FALSE(ec);
    CHECK(whole == data);

    auto [ec2, middle] = read_range(path, 65'536, 1'000, cached_only);
    REQUIRE_FALSE(ec2);
    CHECK(middle == data.substr(65'536, 1'000));

    auto [ec3, tail] = read_range(path, 99'990, 65'536, cached_only);
    REQUIRE_FALSE(ec3);
    CHECK(tail == data.substr(99'990));  // short: the end of the file

    auto [ec4, past] = read_range(path, 100'000, 65'536, cached_only);
    REQUIRE_FALSE(ec4);
    CHECK(past.empty());
  }
}

TEST_CASE("read_range says ENOENT for a missing file in both modes, not 'would block'") {
  ScratchDir dir;
  for (bool cached_only : {false, true}) {
    auto [ec, text] = read_range(dir.path / "gone", 0, 4096, cached_only);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(text.empty());
  }
}
