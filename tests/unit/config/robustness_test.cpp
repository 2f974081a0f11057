// The loader never throws, whatever the file holds: the default file damaged in many ways
// (bytes changed, lines dropped, indentation shifted) always gives either a config or errors
// with a place, never both and never neither.
#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <sstream>

#include "helpers.hpp"

using namespace mailhop::config;
using namespace mailhop::config::test;

namespace {

std::string read_default_file() {
  std::ifstream in(default_file());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void check_consistent(const std::string& yaml) {
  LoadResult result;
  REQUIRE_NOTHROW(result = load_string(yaml, "t.yaml"));
  CHECK(result.config.has_value() == result.errors.empty());
  for (const auto& e : result.errors) {
    CHECK(e.file == "t.yaml");
    CHECK(e.line >= 0);
    CHECK_FALSE(e.message.empty());
  }
}

}  // namespace

TEST_CASE("damaged configuration files give errors, not exceptions") {
  const auto original = read_default_file();
  REQUIRE_FALSE(original.empty());
  std::mt19937 random(20261122);  // fixed: failures are reproducible
  const std::string alphabet = " :-[]{},#&*!|>'\"%@`\n\tabc019/.";
  for (int i = 0; i < 1500; ++i) {
    std::string yaml = original;
    for (int edits = 1 + static_cast<int>(random() % 4); edits > 0; --edits) {
      std::size_t at = random() % yaml.size();
      switch (random() % 3) {
        case 0: yaml[at] = alphabet[random() % alphabet.size()]; break;
        case 1: yaml.erase(at, 1 + random() % 20); break;
        case 2: yaml.insert(at, std::string(1 + random() % 3, alphabet[random() % alphabet.size()])); break;
      }
      if (yaml.empty()) yaml = "x";
    }
    INFO(yaml);
    check_consistent(yaml);
  }
  check_consistent(std::string("\0\xff\xfe", 3));
  check_consistent(std::string(200, '['));
  check_consistent("a: &x [*x]\n");
  check_consistent("relay: &r {host: a.example}\nlimits: *r\n");
}

TEST_CASE("a value that is not UTF-8 is refused with its key and line, so `mailhop check` round-trips") {
  // Found by fuzz_config: a stray byte came back from describe() as U+FFFD.
  CHECK(errors("hostname: \"relay\xed\x65xample.org\"\n") ==
        std::vector<std::string>{"t.yaml:1: hostname: is not valid UTF-8 text (save the file as UTF-8)"});
  CHECK(errors("spool:\n  path: /srv/\xc0\xafspool\n") ==  // an overlong '/'
        std::vector<std::string>{"t.yaml:2: spool.path: is not valid UTF-8 text (save the file as UTF-8)"});
  auto ok = load_ok("hostname: relay.example.org\nspool:\n  path: /srv/spöol-✉-𝄞\n");
  CHECK(ok.spool_path == "/srv/spöol-✉-𝄞");
  auto back = load_string(describe(ok), "d.yaml");
  REQUIRE(back.config);
  CHECK(back.config->spool_path == ok.spool_path);
}
