// A proof bundle as an auditor hands it to `verify-proof` (ledger/bundle.h, VerifyBundle;
// docs/audit.md): any bytes, parsed as JSON, checked against the test ledger's key and
// anchor. Properties: never crashes or throws; a bundle that verifies names at least one
// link. The seeds are real bundles of a small ledger built at start-up.
#include <cstdint>

#include "fuzz_support.h"
#include "ledger/bundle.h"
#include "ledger/checkpoint.h"
#include "ledger/crypto.h"
#include "ledger/lmdb.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {

const CheckpointKey& LedgerKey() {
  static const CheckpointKey k = [] {
    KeyPair kp = KeyPairFromSeed(std::string(32, '\x60'));
    return CheckpointKey{"test.g60ledger/songjiang", kp.secret_key, kp.public_key};
  }();
  return k;
}

// A ledger of one partition with an application, its approval, a payment and a
// clawback, checkpointed; returns a bundle per event, and the payment's trace.
std::vector<std::string> SeedBundles() {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  const auto& k = Keys();
  const std::string a = "91310117MA1J000001";
  std::vector<Record> r = GrantRecords(0);
  int64_t off = static_cast<int64_t>(r.size());
  auto add = [&](const v1::Event& e, const KeyFile& key) {
    r.push_back(MakeRecord(0, off++, e.applicant_id(), SignEvent(e, key)));
  };
  add(ApplicationEvent("app-1", a, 100'000, 50'000), k.portal);
  add(ApprovalEvent("apr-1", a, "app-1", {20'000, 30'000}), k.district);
  add(PaymentEvent("pay-1", a, "apr-1", 1, 20'000), k.treasury);
  add(ClawbackEvent("clb-1", a, {"pay-1"}, 5), k.treasury);
  AppendAll(*ledger, r);
  {
    auto batch = ledger->BeginBatch();
    G60_FUZZ_CHECK(batch.has_value(), "a batch begins");
    G60_FUZZ_CHECK(IssueCheckpoint(*batch, 0, LedgerKey()).has_value(), "a checkpoint is signed");
    G60_FUZZ_CHECK(batch->Commit().has_value(), "the checkpoint is committed");
  }
  std::vector<std::string> out;
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  for (const std::string id : {"app-1", "apr-1", "pay-1", "clb-1"}) {
    auto refs = ResolveEvent(*txn, ledger->tables(), id, std::nullopt);
    G60_FUZZ_CHECK(refs.has_value(), "a seed event is on the record");
    auto bundle = BuildBundle(*ledger, *refs, "event", id);
    G60_FUZZ_CHECK(bundle.has_value(), "a seed bundle is built");
    out.push_back(bundle->dump(2));
  }
  auto trace = TraceEntries(*txn, ledger->tables(), "pay-1", std::nullopt);
  if (trace) {
    auto bundle = BuildBundle(*ledger, *trace, "trace", "pay-1");
    if (bundle) out.push_back(bundle->dump());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::getenv("G60_FUZZ_WRITE_SEEDS") != nullptr) fuzz::MaybeWriteSeeds(SeedBundles());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsView(data, size);
  nlohmann::json bundle = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                                /*allow_exceptions=*/false);
  if (bundle.is_discarded()) return 0;
  BundleTrust trust{note::Verifier{LedgerKey().name, LedgerKey().public_key},
                    {Keys().admin.public_key}};
  auto links = VerifyBundle(bundle, trust);
  if (links) G60_FUZZ_CHECK(!links->empty(), "a verified bundle names a link");
  return 0;
}
