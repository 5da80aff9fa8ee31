// Micro-benchmarks of the pieces on the ingest path (Google Benchmark). The end-to-end
// figures and their ratios to the verify bound come from `g60ledger bench`
// (docs/performance.md); these show where a record's time goes.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>

#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/entry.h"
#include "ledger/partitioner.h"
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

// A fresh durable ledger in `dir` (removed first), writable, with the demo anchors.
std::unique_ptr<Ledger> FreshLedger(const std::string& dir) {
  std::filesystem::remove_all(dir);
  LedgerOptions o;
  o.dir = dir;
  o.writer = true;
  o.map_size_bytes = size_t{2} << 30;
  o.trust_anchors = {Keys().admin.public_key};
  o.partition_count = 8;  // as DemoStreamRecords() spreads the applicants
  auto ledger = Ledger::Open(o);
  if (!ledger) std::abort();
  return std::move(*ledger);
}

// Rules and LMDB append of already-verified records, committed in batches of 1000:
// the single writer's share of each record.
void BM_AppendVerified(benchmark::State& state) {
  std::string dir = (std::filesystem::temp_directory_path() / "g60-bench-append").string();
  auto ledger = FreshLedger(dir);
  int64_t offset = 0;
  std::string malformed(200, 'x');  // decided without state: the rules' lower bound
  Prechecked pre = Precheck(malformed, nullptr);
  for (auto _ : state) {
    auto batch = ledger->BeginBatch();
    for (int i = 0; i < 1000; ++i) {
      Record r{"g60.events", 0, offset++, 1767225600000, "k", malformed};
      benchmark::DoNotOptimize(batch->Append(r, pre));
    }
    (void)batch->Commit();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  ledger.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendVerified)->Unit(benchmark::kMillisecond);

// The writer's share of a realistic stream: the demo stream's records (every programme,
// applications, approvals, payments, clawbacks, rejections) across 8 partitions, with
// signatures checked beforehand, decided and appended into a fresh durable ledger in
// batches of range(0) records. This is what the single writer does per record in ingest.
struct DemoRecords {
  std::vector<Record> records;
  std::vector<Prechecked> prechecked;
};

const DemoRecords& DemoStreamRecords() {
  static const DemoRecords demo = [] {
    DemoRecords d;
    auto catalog = LoadCatalogText(G60_SOURCE_DIR "/schemas/catalog.txtpb");
    if (!catalog) std::abort();
    DemoStreamOptions so;
    so.catalog = *catalog;
    so.scenarios = false;
    so.seed = 5;
    so.applicants = 6000;
    std::vector<int64_t> offsets(8, 0);
    std::map<std::string, std::string> keys;
    for (auto s : {DemoSigner::kAdmin, DemoSigner::kPortal, DemoSigner::kDistrict,
                   DemoSigner::kMunicipal, DemoSigner::kTreasury, DemoSigner::kTreasury2}) {
      keys[KeyIdOf(Keys().For(s).public_key)] = Keys().For(s).public_key;
    }
    int64_t t = 1767225600000;
    for (const auto& step : GenerateDemoStream(so, Keys())) {
      for (const auto& pe : step.events) {
        std::string value = SignDemoEvent(step, pe.event, Keys());
        for (uint32_t p = 0; p < 8; ++p) {
          if (!step.control && p != KafkaPartitionForKey(pe.event.applicant_id(), 8)) {
            continue;
          }
          d.records.push_back(Record{"g60.events", p, offsets[p]++, t++,
                                     step.control ? "" : pe.event.applicant_id(), value});
        }
      }
    }
    PrecheckAll(
        d.records, d.prechecked,
        [&](std::string_view id) {
          auto it = keys.find(std::string(id));
          return it == keys.end() ? std::string() : it->second;
        },
        2);
    return d;
  }();
  return demo;
}

void BM_AppendDemoStream(benchmark::State& state) {
  const DemoRecords& demo = DemoStreamRecords();
  const size_t batch_size = static_cast<size_t>(state.range(0));
  std::string dir = (std::filesystem::temp_directory_path() / "g60-bench-demo").string();
  for (auto _ : state) {
    state.PauseTiming();
    auto ledger = FreshLedger(dir);
    state.ResumeTiming();
    for (size_t i = 0; i < demo.records.size(); i += batch_size) {
      auto batch = ledger->BeginBatch();
      for (size_t j = i; j < std::min(demo.records.size(), i + batch_size); ++j) {
        auto out = batch->Append(demo.records[j], demo.prechecked[j]);
        if (!out || !out->appended) std::abort();
      }
      if (!batch->Commit()) std::abort();
    }
    state.PauseTiming();
    ledger.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(demo.records.size()));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendDemoStream)->Arg(500)->Arg(2000)->Arg(8000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
