#include "ops/query_bench.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "ledger/bundle.h"
#include "ledger/catalog.h"
#include "ledger/checkpoint.h"
#include "ledger/partitioner.h"
#include "ledger/query.h"
#include "ops/demo_stream.h"

namespace g60 {

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};
Percentiles Of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  };
  return {at(0.50), at(0.99), v.back()};
}

constexpr uint32_t kPartitions = 8;

// Builds the ledger: every event of the stream signed (on all cores), decided and
// appended, 5,000 records per durable transaction.
Status Build(const QueryBenchOptions& o, const std::string& dir, const DemoKeys& keys,
             std::vector<std::string>& applicants, std::vector<std::string>& event_ids,
             std::vector<std::string>& programmes) {
  auto catalog = LoadCatalogText(o.catalog_path);
  if (!catalog) return Fail(catalog.error());
  for (const auto& p : catalog->programmes())
    programmes.push_back(p.id());
  DemoStreamOptions so;
  so.catalog = *catalog;
  so.seed = 7;
  so.applicants =
      static_cast<int>(std::max<uint64_t>(100, o.entries * 10 / 39));  // ~3.96 entries each
  auto steps = GenerateDemoStream(so, keys);
  std::vector<std::pair<const DemoStep*, const v1::Event*>> planned;
  for (const auto& s : steps)
    for (const auto& pe : s.events)
      planned.emplace_back(&s, &pe.event);
  spdlog::info("bench: signing {} events", planned.size());
  std::vector<std::string> values(planned.size());
  {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < planned.size();)
        values[i] = SignDemoEvent(*planned[i].first, *planned[i].second, keys);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < std::max(1u, std::thread::hardware_concurrency()); ++t)
      pool.emplace_back(work);
    work();
    for (auto& t : pool)
      t.join();
  }
  LedgerOptions lo;
  lo.dir = dir;
  lo.writer = true;
  lo.map_size_bytes = size_t{16} << 30;
  lo.trust_anchors = {keys.admin.public_key};
  lo.partition_count = kPartitions;
  auto ledger = Ledger::Open(lo);
  if (!ledger) return Fail(ledger.error());
  std::vector<int64_t> offsets(kPartitions, 0);
  std::vector<Record> batch;
  std::vector<Prechecked> pre;
  PublicKeyLookup lookup = [&](std::string_view id) { return (*ledger)->PublicKeyOf(id); };
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  uint64_t appended = 0;
  auto started = Clock::now();
  auto flush = [&]() -> Status {
    PrecheckAll(batch, pre, lookup, threads);
    auto b = (*ledger)->BeginBatch();
    if (!b) return Fail(b.error());
    for (size_t i = 0; i < batch.size(); ++i) {
      auto out = b->Append(batch[i], pre[i]);
      if (!out) return Fail(out.error());
    }
    G60_TRY(b->Commit());
    appended += batch.size();
    batch.clear();
    return {};
  };
  for (size_t i = 0; i < planned.size(); ++i) {
    const auto& [step, event] = planned[i];
    std::vector<uint32_t> parts;
    if (step->control) {
      for (uint32_t p = 0; p < kPartitions; ++p)
        parts.push_back(p);
    } else {
      parts.push_back(KafkaPartitionForKey(event->applicant_id(), kPartitions));
      if (i % 7 == 0) applicants.push_back(event->applicant_id());
      if (i % 5 == 0) event_ids.push_back(event->event_id());
    }
    for (uint32_t p : parts) {
      batch.push_back(Record{"g60.events", p, offsets[p]++, 1767225600000 + static_cast<int64_t>(i),
                             step->control ? "" : event->applicant_id(), values[i]});
    }
    if (batch.size() >= 5000) G60_TRY(flush());
    if (i % 200000 == 0 && i && appended) {
      spdlog::info("bench: {} entries appended ({:.0f}/s)", appended,
                   static_cast<double>(appended) /
                       std::chrono::duration<double>(Clock::now() - started).count());
    }
  }
  if (!batch.empty()) G60_TRY(flush());
  // A checkpoint of every partition, for the proofs.
  KeyPair kp = KeyPairFromSeed(std::string(32, '\x42'));
  Checkpointer cp(CheckpointKey{"bench.g60ledger/songjiang", kp.secret_key, kp.public_key}, 1,
                  std::chrono::milliseconds(0));
  auto b = (*ledger)->BeginBatch();
  if (!b) return Fail(b.error());
  auto issued = cp.IssueDue(*b, true);
  if (!issued) return Fail(issued.error());
  G60_TRY(b->Commit());
  spdlog::info("bench: {} entries in {:.0f} s", appended,
               std::chrono::duration<double>(Clock::now() - started).count());
  return {};
}

}  // namespace

int RunQueryBench(const QueryBenchOptions& o) {
  std::string dir = o.work_dir + "/query-bench-ledger";
  DemoKeys keys = DemoKeys::FromSeed(2026);
  std::vector<std::string> applicants, event_ids, programmes;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (auto s = Build(o, dir, keys, applicants, event_ids, programmes); !s) {
    std::fprintf(stderr, "g60ledger: %s\n", s.error().ToString().c_str());
    return 3;
  }
  LedgerOptions lo;
  lo.dir = dir;
  lo.map_size_bytes = size_t{16} << 30;
  auto ledger = Ledger::Open(lo);
  if (!ledger) {
    std::fprintf(stderr, "g60ledger: %s\n", ledger.error().ToString().c_str());
    return 3;
  }
  auto heads = (*ledger)->Heads();
  uint64_t entries = 0;
  for (const auto& h : *heads)
    entries += h.size;
  Queries q(**ledger);
  std::mt19937_64 rng(11);
  auto pick = [&](const std::vector<std::string>& v) -> const std::string& {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::vector<double> history, bundle, utilisation;
  uint64_t rows = 0, links = 0;
  for (unsigned i = 0; i < o.samples; ++i) {
    auto t0 = Clock::now();
    auto r = q.Applicant(pick(applicants), Page{100, ""});
    auto t1 = Clock::now();
    if (!r) {
      std::fprintf(stderr, "g60ledger: %s\n", r.error().ToString().c_str());
      return 3;
    }
    rows += r->rows.size();
    history.push_back(Ms(t0, t1));
  }
  for (unsigned i = 0; i < o.samples; ++i) {
    const std::string& id = pick(event_ids);
    auto t0 = Clock::now();
    auto txn = lmdb::Txn::Begin((*ledger)->env(), true);
    auto refs = ResolveEvent(*txn, (*ledger)->tables(), id, std::nullopt);
    txn->Abort();
    if (!refs) continue;  // an event id the stream sent twice, etc.
    auto b = BuildBundle(**ledger, *refs, "event", id);
    if (!b) {
      std::fprintf(stderr, "g60ledger: %s\n", b.error().ToString().c_str());
      return 3;
    }
    std::string text = b->dump();
    auto t1 = Clock::now();
    links += (*b)["links"].size();
    bundle.push_back(Ms(t0, t1));
  }
  for (unsigned i = 0; i < std::max(100u, o.samples / 10); ++i) {
    auto t0 = Clock::now();
    auto r = q.Utilisation(pick(programmes), 0);
    auto t1 = Clock::now();
    if (!r) {
      std::fprintf(stderr, "g60ledger: %s\n", r.error().ToString().c_str());
      return 3;
    }
    utilisation.push_back(Ms(t0, t1));
  }
  auto h = Of(history), b = Of(bundle), u = Of(utilisation);
  std::printf("entries                 %llu in %u partitions\n",
              static_cast<unsigned long long>(entries), kPartitions);
  std::printf(
      "applicant history       p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu applicants, %.1f rows "
      "each)\n",
      h.p50, h.p99, h.max, history.size(),
      static_cast<double>(rows) / static_cast<double>(history.size()));
  std::printf(
      "proof bundle            p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu events, %.1f links "
      "each)\n",
      b.p50, b.p99, b.max, bundle.size(),
      static_cast<double>(links) / static_cast<double>(std::max<size_t>(1, bundle.size())));
  std::printf("programme utilisation   p50 %.3f ms, p99 %.3f ms, max %.3f ms (%zu queries)\n",
              u.p50, u.p99, u.max, utilisation.size());
  std::printf("ratio history-p99/5ms %.3f\n", h.p99 / 5.0);
  std::printf("ratio bundle-p99/5ms %.3f\n", b.p99 / 5.0);
  std::printf("ratio utilisation-p99/50ms %.3f\n", u.p99 / 50.0);
  if (!o.keep) std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace g60
