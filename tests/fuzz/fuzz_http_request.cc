// What reaches `serve` from the network before any handler runs (ops/http_target.h,
// ops/serve_access.h): the raw request target, an Authorization header, and a tokens
// file's text. The first input byte chooses which. Properties: never crashes; a target
// that parses has segments and parameters that are UTF-8 without control characters,
// and re-encoding its segments (PercentEncode) parses back to the same segments.
#include <cstdint>

#include "fuzz_support.h"
#include "ops/http_target.h"
#include "ops/serve_access.h"

using namespace g60;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::MaybeWriteSeeds({
      "t/api/proofs/pay%2F2024%2F1?partition=3&after=10",
      "t/api/trace/%E8%B5%84%E5%8A%A9?limit=20",
      "t/app.js%00.html",
      "aBearer 0123456789abcdef0123456789abcdef",
      "fauditor-1 auditor sha256:" + std::string(64, 'a') +
          "\npublic-1 public sha256:" + std::string(64, 'b') + "\n",
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::AsView(data + 1, size - 1);
  switch (data[0]) {
    case 't': {
      auto target = ParseRequestTarget(rest);
      if (!target) return 0;
      std::string again;
      for (const auto& s : target->segments) {
        G60_FUZZ_CHECK(TextProblem(s, "segment").empty(), "segments are clean UTF-8");
        again += "/" + PercentEncode(s);
      }
      for (const auto& [name, value] : target->query) {
        G60_FUZZ_CHECK(TextProblem(name, "name").empty() && TextProblem(value, "value").empty(),
                       "parameters are clean UTF-8");
      }
      auto reparsed = ParseRequestTarget(again.empty() ? "/" : again);
      G60_FUZZ_CHECK(reparsed.has_value() && reparsed->segments == target->segments,
                     "re-encoded segments parse back to the same segments");
      (void)target->Path();
      break;
    }
    case 'a':
      (void)BearerToken(rest);
      break;
    case 'f': {
      (void)TokenTable::Parse(rest, "tokens");
      break;
    }
    default:
      break;
  }
  return 0;
}
