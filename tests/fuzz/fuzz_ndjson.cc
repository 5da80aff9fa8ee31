// One NDJSON line of `g60ledger produce` (producers/ndjson.h), as an Event and as a
// SignedEvent. Properties: never crashes; a line that parses prints back (ToJsonLine) to
// a line that parses to the same message, so what is signed is what was read.
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>

#include "fuzz_support.h"
#include "producers/ndjson.h"
#include "support.h"

using namespace g60;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto& k = testing::Keys();
  const std::string a = "91310117MA1J000001";
  v1::SignedEvent se;
  se.ParseFromString(SignEvent(testing::ApplicationEvent("app-1", a, 1000, 500), k.portal));
  fuzz::MaybeWriteSeeds({
      ToJsonLine(testing::ApplicationEvent("app-1", a, 100'000, 50'000)),
      ToJsonLine(testing::ApprovalEvent("apr-1", a, "app-1", {20'000, 30'000})),
      ToJsonLine(testing::PaymentEvent("pay-1", a, "apr-1", 1, 20'000)),
      ToJsonLine(testing::ClawbackEvent("clb-1", a, {"pay-1"}, 5)),
      ToJsonLine(testing::GrantEvent("grant-1", k.treasury2, v1::ROLE_TREASURY)),
      ToJsonLine(se),
      R"({"eventId":"a","application":{"requestedFen":"1","requested_fen":"2"}})",
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line = fuzz::AsView(data, size);
  if (auto e = ParseEventJson(line)) {
    auto again = ParseEventJson(ToJsonLine(*e));
    G60_FUZZ_CHECK(again.has_value(), "a printed Event parses");
    G60_FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(*e, *again),
                   "a printed Event parses to the same event");
  } else {
    G60_FUZZ_CHECK(!e.error().message().empty(), "a refusal says why");
  }
  if (auto se = ParseSignedEventJson(line)) {
    auto again = ParseSignedEventJson(ToJsonLine(*se));
    G60_FUZZ_CHECK(again.has_value() && again->SerializeAsString() == se->SerializeAsString(),
                   "a printed SignedEvent parses to the same bytes");
  }
  return 0;
}
