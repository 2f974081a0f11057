// Shared by the fuzz targets: an invariant that does not hold is a crash libFuzzer records
// (with the input that caused it), so a violation is reported exactly like a memory error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mailhop::fuzz {

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "\n%s:%d: invariant violated: %s\n", file, line, what);
  std::abort();
}

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) ::mailhop::fuzz::violated(#cond, __FILE__, __LINE__); \
  } while (0)

// No CR without a following LF and no LF without a preceding CR.
inline bool canonical(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
  }
  return true;
}

// Reads the fuzz input front to back: a few bytes steer the test (chunk sizes, limits), the
// rest is the payload.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(reinterpret_cast<const char*>(data)), size_(size) {}
  std::uint8_t byte() {
    if (pos_ >= size_) return 0;
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::string_view rest() const { return {data_ + pos_, size_ - pos_}; }

 private:
  const char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace mailhop::fuzz
