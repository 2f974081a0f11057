// Fuzz target: the DATA reader and the dot codec (smtp/data_reader.hpp, smtp/dot_codec.hpp),
// the SMTP smuggling front line. The input is what a client sends after "354".
//
// Invariants, whatever the bytes and however they are split into reads:
// - the result (content, bytes consumed, done, bare CR, size, 8-bit) does not depend on the split;
// - the content never holds a bare CR or LF, and a finished message ends with CRLF;
// - dot_stuff(content) holds no bare CR or LF and no line with only a dot except the last, and
//   the reader turns it back into exactly the content (what the next hop receives is what was
//   acknowledged);
// - the content kept never exceeds max_size;
// - the DotStuffer, given raw bytes it should never see (bare CR, bare LF), still sends no bare
//   CR or LF and no early end-of-data line, and chunking does not change what it sends.
#include <cstdint>
#include <string>

#include "check.hpp"
#include "mailhop/smtp/data_reader.hpp"
#include "mailhop/smtp/dot_codec.hpp"

using mailhop::fuzz::canonical;
using mailhop::smtp::DataReader;
using mailhop::smtp::DotStuffer;

namespace {

struct Result {
  std::string out;
  std::size_t consumed = 0;
  bool done = false, bare_cr = false, too_big = false, eight_bit = false;
  std::uint64_t size = 0;
  bool operator==(const Result&) const = default;
};

Result read(std::string_view input, std::size_t step, std::uint64_t max_size) {
  DataReader reader(max_size);
  Result r;
  for (std::size_t pos = 0; pos < input.size() && !reader.done(); pos += step) {
    auto chunk = input.substr(pos, step);
    auto n = reader.feed(chunk, r.out);
    FUZZ_CHECK(n <= chunk.size());
    FUZZ_CHECK(reader.done() || n == chunk.size());  // only the end of data stops a read short
    r.consumed += n;
  }
  r.done = reader.done();
  r.bare_cr = reader.bare_cr();
  r.too_big = reader.too_big();
  r.eight_bit = reader.eight_bit();
  r.size = reader.size();
  return r;
}

// The content is one dot-terminated message on the wire, with one end marker, at its end.
void check_wire(const std::string& wire) {
  FUZZ_CHECK(canonical(wire));
  FUZZ_CHECK(wire.size() >= 3 && wire.compare(wire.size() - 3, 3, ".\r\n") == 0);
  FUZZ_CHECK(wire == ".\r\n" || (wire.size() >= 5 && wire.compare(wire.size() - 5, 5, "\r\n.\r\n") == 0));
  auto first_end = wire.find("\r\n.\r\n");
  FUZZ_CHECK(wire.starts_with(".\r\n") ? wire.size() == 3 : first_end == wire.size() - 5);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::uint64_t kBig = 1 << 20;

  const auto whole = read(input, input.size() + 1, kBig);
  FUZZ_CHECK(whole.consumed <= input.size());
  if (whole.done) FUZZ_CHECK(whole.consumed > 0 && input[whole.consumed - 1] == '\n');
  else FUZZ_CHECK(whole.consumed == input.size());
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, size / 3 + 1})
    FUZZ_CHECK(read(input, step, kBig) == whole);

  FUZZ_CHECK(!whole.too_big);
  FUZZ_CHECK(whole.out.size() + (whole.bare_cr ? 1 : 0) <= whole.size);  // a bare CR is counted, not kept
  if (!whole.bare_cr) FUZZ_CHECK(whole.out.size() == whole.size);
  FUZZ_CHECK(canonical(whole.out));
  if (whole.done) FUZZ_CHECK(whole.out.empty() || whole.out.ends_with("\r\n"));

  // What would be relayed, read back by a receiver like mailhop.
  if (whole.done && !whole.bare_cr) {
    auto wire = mailhop::smtp::dot_stuff(whole.out);
    check_wire(wire);
    auto back = read(wire, 5, kBig);
    FUZZ_CHECK(back.done && !back.bare_cr);
    FUZZ_CHECK(back.consumed == wire.size());
    FUZZ_CHECK(back.out == whole.out);
  }

  // A small limit: the first max_size bytes of the same content are kept, nothing more.
  constexpr std::uint64_t kSmall = 37;
  for (std::size_t step : {std::size_t{1}, input.size() + 1}) {
    auto small = read(input, step, kSmall);
    FUZZ_CHECK(small.out.size() <= kSmall);
    FUZZ_CHECK(small.too_big == (whole.size > kSmall));
    FUZZ_CHECK(small.consumed == whole.consumed && small.done == whole.done && small.size == whole.size);
    FUZZ_CHECK(whole.out.starts_with(small.out));
  }

  // The second line of defence: raw input straight into the encoder.
  std::string sent_whole;
  DotStuffer a;
  a.encode(input, sent_whole);
  a.finish(sent_whole);
  check_wire(sent_whole);
  std::string sent_cut;
  DotStuffer b;
  for (std::size_t pos = 0; pos < input.size(); pos += 3) b.encode(input.substr(pos, 3), sent_cut);
  b.finish(sent_cut);
  FUZZ_CHECK(sent_cut == sent_whole);
  return 0;
}
