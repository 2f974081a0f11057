// Fuzz target: the spool's envelope reader (spool/envelope.hpp). Envelopes are written by
// mailhop, but the start-up scan must survive whatever a crash, a full disk or a person with an
// editor left in env/: the input is such a file.
//
// Invariants: nothing crashes; a refusal says why; an envelope that parses serialises to a text
// that parses again and serialises to the same text (a fixed point: nothing read is lost or
// changed by the next rewrite); and that text cut short anywhere is refused, never taken for a
// shorter envelope (the end record).
#include <cstdint>
#include <string>

#include "check.hpp"
#include "mailhop/spool/envelope.hpp"

using namespace mailhop::spool;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_envelope(input);
  if (!parsed.envelope) {
    FUZZ_CHECK(!parsed.error.empty());
    return 0;
  }
  auto text = serialize(*parsed.envelope);
  auto again = parse_envelope(text);
  FUZZ_CHECK(again.envelope.has_value());
  FUZZ_CHECK(serialize(*again.envelope) == text);
  FUZZ_CHECK(again.envelope->recipients.size() == parsed.envelope->recipients.size());
  FUZZ_CHECK(again.envelope->sender == parsed.envelope->sender);
  FUZZ_CHECK(again.envelope->auth_user == parsed.envelope->auth_user);

  // Truncated copies: every cut is refused (a few positions, to keep each run fast).
  for (std::size_t cut : {std::size_t{0}, text.size() / 2, text.size() - 1, text.size() - 2, text.size() - 4})
    if (cut < text.size()) FUZZ_CHECK(!parse_envelope(std::string_view(text).substr(0, cut)).envelope);
  return 0;
}
