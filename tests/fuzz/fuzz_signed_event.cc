// Decoding a Kafka record value: SignedEvent, then the Event in its signed bytes, then
// every field rule that needs no state (ledger/event_view.h, DecodeMessage). Properties:
// never crashes; a decoded message re-serialises to bytes that decode the same way; a
// failure always has a reason and a detail, and no string it leaves is outside UTF-8.
#include <cstdint>

#include "fuzz_support.h"
#include "ledger/bytes.h"
#include "ledger/event_view.h"
#include "support.h"

using namespace g60;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto& k = testing::Keys();
  const std::string a = "91310117MA1J000001";
  fuzz::MaybeWriteSeeds({
      SignEvent(testing::ApplicationEvent("app-1", a, 100'000, 50'000), k.portal),
      SignEvent(testing::ApprovalEvent("apr-1", a, "app-1", {20'000, 30'000}), k.district),
      SignEvent(testing::PaymentEvent("pay-1", a, "apr-1", 1, 20'000), k.treasury),
      SignEvent(testing::ClawbackEvent("clb-1", a, {"pay-1"}, 5), k.treasury),
      SignEvent(testing::GrantEvent("grant-1", k.treasury2, v1::ROLE_TREASURY), k.admin),
      SignEvent(testing::CatalogEvent("catalog-1"), k.admin),
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodedMessage d = DecodeMessage(fuzz::AsView(data, size));
  if (!d.ok()) {
    G60_FUZZ_CHECK(!d.detail.empty(), "a rejected value has a detail");
    G60_FUZZ_CHECK(ValidUtf8(d.detail), "the detail is UTF-8");
    return 0;
  }
  G60_FUZZ_CHECK(ValidUtf8(d.event.event_id()) && ValidUtf8(d.signed_event.key_id()),
                 "decoded strings are UTF-8");
  std::string again;
  G60_FUZZ_CHECK(d.signed_event.SerializeToString(&again), "re-serialises");
  DecodedMessage e = DecodeMessage(again);
  G60_FUZZ_CHECK(e.ok() && e.type == d.type, "re-serialised bytes decode the same way");
  (void)EventTypeName(d.type);
  return 0;
}
