// Fuzz target: the configuration loader (config/loader.hpp): yaml-cpp plus mailhop's schema and
// validation. The input is a configuration file as an administrator (or a template engine gone
// wrong) might write it.
//
// Invariants: nothing crashes or throws out of load_string(); it gives a configuration or errors,
// never both and never neither; errors are sorted by line and carry a line within the file; and
// the effective configuration that `mailhop check` prints (describe()) loads back to the same
// configuration.
#include <cstdint>
#include <string>

#include "check.hpp"
#include "mailhop/config/loader.hpp"

using namespace mailhop::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto result = load_string(yaml, "fuzz.yaml");
  FUZZ_CHECK(result.config.has_value() == result.errors.empty());
  int previous = 0;
  for (const auto& e : result.errors) {
    FUZZ_CHECK(e.line >= 0 && e.line >= previous);
    previous = e.line;
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(e.to_string().starts_with("fuzz.yaml"));
  }
  if (!result.config) return 0;

  auto described = describe(*result.config);
  auto back = load_string(described, "described.yaml");
  if (!back.config) {
    for (const auto& e : back.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    FUZZ_CHECK(back.config.has_value());
  }
  back.config->source = result.config->source;  // the file name, the only intended difference
  FUZZ_CHECK(*back.config == *result.config);
  return 0;
}
