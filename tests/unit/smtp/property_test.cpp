// Properties over many pseudo-random inputs (fixed seed, so failures reproduce): the DATA
// reader gives the same result however its input is cut, never stores a bare CR or LF, and
// what the DotStuffer sends is read back unchanged.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "mailhop/smtp/data_reader.hpp"
#include "mailhop/smtp/dot_codec.hpp"
#include "mailhop/smtp/line_buffer.hpp"

using namespace mailhop::smtp;

namespace {

// Short strings over the bytes that matter to the protocol, plus an 8-bit one.
std::string random_input(std::mt19937& rng) {
  static constexpr char kAlphabet[] = {'\r', '\n', '.', '.', 'a', ' ', '\xc3'};
  std::uniform_int_distribution<std::size_t> len(0, 40), pick(0, sizeof kAlphabet - 1);
  std::string s(len(rng), 'a');
  for (auto& c : s) c = kAlphabet[pick(rng)];
  return s;
}

struct Read {
  std::string out;
  std::size_t consumed = 0;
  bool done = false, bare_cr = false;
  bool operator==(const Read&) const = default;
};

Read read_cut(std::string_view input, std::size_t step) {
  DataReader reader(1 << 20);
  Read r;
  for (std::size_t pos = 0; pos < input.size() && !reader.done(); pos += step)
    r.consumed += reader.feed(input.substr(pos, step), r.out);
  r.done = reader.done();
  r.bare_cr = reader.bare_cr();
  return r;
}

bool canonical(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("DataReader: chunking never changes the result; output is canonical", "[property][data]") {
  std::mt19937 rng(20231218);  // the SMTP smuggling disclosure date
  for (int n = 0; n < 3000; ++n) {
    auto input = random_input(rng);
    auto whole = read_cut(input, input.size() + 1);
    INFO("case " << n);
    for (std::size_t step : {1, 2, 3, 5}) CHECK(read_cut(input, step) == whole);
    CHECK(canonical(whole.out));
    bool ends_in_crlf = whole.out.size() >= 2 && whole.out.substr(whole.out.size() - 2) == "\r\n";
    if (whole.done) CHECK((whole.out.empty() || ends_in_crlf));  // a finished message ends with a line end
  }
}

TEST_CASE("DotStuffer then DataReader is the identity on canonical content", "[property][dot]") {
  std::mt19937 rng(5321);
  for (int n = 0; n < 3000; ++n) {
    // Canonical content: random lines joined by CRLF.
    std::string content;
    std::uniform_int_distribution<int> lines(0, 6);
    for (int l = lines(rng); l > 0; --l) {
      auto line = random_input(rng);
      std::erase(line, '\r');
      std::erase(line, '\n');
      content += line + "\r\n";
    }
    INFO("case " << n);
    auto wire = dot_stuff(content);
    CHECK(canonical(wire));
    bool one_end = wire.find("\r\n.\r\n") == wire.size() - 5 || wire == ".\r\n";
    CHECK(one_end);  // the only line holding a dot alone is the last
    auto back = read_cut(wire, 7);
    CHECK(back.done);
    CHECK(back.consumed == wire.size());
    CHECK(back.out == content);
  }
}

TEST_CASE("LineBuffer: lines are the same however the stream is cut", "[property][line]") {
  std::mt19937 rng(2920);
  for (int n = 0; n < 2000; ++n) {
    std::string input;
    for (int k = 0; k < 4; ++k) input += random_input(rng);
    auto lines_of = [&](std::size_t step) {
      LineBuffer b(16);
      std::vector<std::pair<std::string, bool>> lines;
      for (std::size_t pos = 0; pos < input.size(); pos += step) {
        b.append(std::string_view(input).substr(pos, step));
        while (auto l = b.pop_line()) lines.emplace_back(l->text, l->too_long);
      }
      return lines;
    };
    INFO("case " << n);
    auto whole = lines_of(input.size() + 1);
    for (std::size_t step : {1, 3, 17}) CHECK(lines_of(step) == whole);
  }
}
