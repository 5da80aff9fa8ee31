// Micro-benchmarks of the pieces on the ingest path (Google Benchmark). The end-to-end
// figures and their ratios to the verify bound come from `g60ledger bench`
// (docs/performance.md); these show where a record's time goes.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/entry.h"
#include "ledger/rules.h"
#include "ledger/store.h"
#include "ops/demo_stream.h"
#include "producers/signer.h"

namespace {

using namespace g60;

const DemoKeys& Keys() {
  static const DemoKeys k = DemoKeys::FromSeed(1);
  return k;
}

std::string SampleValue() {
  v1::Event e;
  e.set_event_id("pay-000123-1");
  e.set_applicant_id("91310117MA1J3XXXX1");
  e.set_occurred_at_ms(1767225600000);
  auto* p = e.mutable_stage_payment();
  p->set_approval_event_id("apr-000123");
  p->set_stage(1);
  p->set_amount_fen(123456789);
  p->set_source(v1::FUNDING_SOURCE_DISTRICT_SPECIAL_FUND);
  return SignEvent(e, Keys().treasury);
}

void BM_Ed25519Verify(benchmark::State& state) {
  std::string value = SampleValue();
  v1::SignedEvent se;
  se.ParseFromString(value);
  for (auto _ : state) {
    benchmark::DoNotOptimize(VerifyDetached(Keys().treasury.public_key, se.signature(),
                                            kEventSignaturePrefix, se.event()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ed25519Verify);

void BM_DecodeMessage(benchmark::State& state) {
  std::string value = SampleValue();
  for (auto _ : state)
    benchmark::DoNotOptimize(DecodeMessage(value));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeMessage);

void BM_EntryEncodeAndHash(benchmark::State& state) {
  std::string body(420, 'b');  // a typical entry body
  Hash prev{};
  for (auto _ : state) {
    std::string e = EncodeEntry(3, 12345, prev, body);
    prev = EntryHash(e);
    benchmark::DoNotOptimize(prev);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EntryEncodeAndHash);

// Rules and LMDB append of already-verified records, committed in batches of 1000:
// the single writer's share of each record.
void BM_AppendVerified(benchmark::State& state) {
  std::string dir = (std::filesystem::temp_directory_path() / "g60-bench-append").string();
  std::filesystem::remove_all(dir);
  LedgerOptions o;
  o.dir = dir;
  o.writer = true;
  o.map_size_bytes = size_t{2} << 30;
  o.trust_anchors = {Keys().admin.public_key};
  auto ledger = Ledger::Open(o);
  int64_t offset = 0;
  std::string malformed(200, 'x');  // decided without state: the rules' lower bound
  Prechecked pre = Precheck(malformed, nullptr);
  for (auto _ : state) {
    auto batch = (*ledger)->BeginBatch();
    for (int i = 0; i < 1000; ++i) {
      Record r{"g60.events", 0, offset++, 1767225600000, "k", malformed};
      benchmark::DoNotOptimize(batch->Append(r, pre));
    }
    (void)batch->Commit();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  ledger->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendVerified)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
