// Shared by the libFuzzer harnesses (tests/fuzz/README.md). Each harness is a program
// built with clang's -fsanitize=fuzzer,address,undefined by the `fuzz` preset; a crash,
// a sanitizer report, an uncaught exception or a failed G60_FUZZ_CHECK is a finding.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

// A property every input must keep; a violation aborts, which libFuzzer reports with
// the input that caused it.
#define G60_FUZZ_CHECK(cond, what)                                                          \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace g60::fuzz {

// protobuf logs every string it parses that is not UTF-8; the fuzzers make many.
inline google::protobuf::LogSilencer quiet_protobuf;

// With G60_FUZZ_WRITE_SEEDS=DIR in the environment, a harness writes its seed inputs
// (built from the test keys and events, so they stay valid when formats change) into
// DIR and exits: `tests/fuzz/run --seed` refreshes tests/fuzz/corpus/<harness>/ with it.
inline void MaybeWriteSeeds(const std::vector<std::string>& seeds) {
  const char* dir = std::getenv("G60_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  std::filesystem::create_directories(dir);
  for (size_t i = 0; i < seeds.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "seed-%03zu", i);
    std::ofstream(std::filesystem::path(dir) / name, std::ios::binary) << seeds[i];
  }
  std::fprintf(stderr, "wrote %zu seeds to %s\n", seeds.size(), dir);
  std::exit(0);
}

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace g60::fuzz
