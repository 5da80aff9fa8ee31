#include "ops/bench.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "consumers/ingest.h"
#include "ledger/audit.h"
#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/verify.h"
#include "ops/broker.h"
#include "ops/demo_stream.h"
#include "producers/producer.h"

namespace g60 {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// VmRSS or VmHWM of this process in MiB.
double ProcMib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field) + 1)) / 1024.0;
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux: write 5 to clear_refs).
void ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

struct Signed {
  std::string public_key;
  v1::SignedEvent se;
};

// (a) Ed25519 verifications per second on `threads` cores, over real event bytes.
double MeasureBound(const std::vector<Signed>& sample, unsigned threads,
                    std::chrono::milliseconds duration) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> total{0};
  std::atomic<uint64_t> bad{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      while (!go.load())
        std::this_thread::yield();
      uint64_t n = 0;
      for (size_t i = t; !stop.load(std::memory_order_relaxed); i = (i + 1) % sample.size()) {
        const Signed& s = sample[i];
        if (!VerifyDetached(s.public_key, s.se.signature(), kEventSignaturePrefix, s.se.event()))
          ++bad;
        ++n;
      }
      total += n;
    });
  }
  auto start = Clock::now();
  go = true;
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& th : pool)
    th.join();
  G60_ASSERT(bad.load() == 0);
  return static_cast<double>(total.load()) / Seconds(start, Clock::now());
}

// CPU time of this process so far (all threads), in seconds.
double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<BenchReport> RunBench(const BenchOptions& o) {
  CryptoInit();
  BenchReport r;
  r.threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  auto catalog = LoadCatalogText(o.catalog_path);
  if (!catalog) return Fail(catalog.error());
  DemoKeys keys = DemoKeys::FromSeed(2026);
  DemoStreamOptions so;
  so.catalog = *catalog;
  so.scenarios = false;
  so.seed = 99;
  so.applicants = static_cast<int>(std::max<uint64_t>(1, o.events * 10 / 38));  // ~3.8 events each
  auto steps = GenerateDemoStream(so, keys);
  uint64_t planned = 0;
  for (const auto& s : steps)
    planned += s.events.size();

  // The bound, over the stream's own signed events.
  std::vector<Signed> sample;
  for (const auto& step : steps) {
    for (const auto& pe : step.events) {
      if (sample.size() >= 4096) break;
      if (step.signer == DemoSigner::kForged || step.signer == DemoSigner::kRogue) continue;
      Signed s{keys.For(step.signer).public_key, {}};
      G60_ASSERT(s.se.ParseFromString(SignDemoEvent(step, pe.event, keys)));
      sample.push_back(std::move(s));
    }
  }
  spdlog::info("bench: measuring the Ed25519 verify bound on {} thread(s)", r.threads);
  std::vector<double> bounds;
  auto bound = [&](const char* when) {
    double b = MeasureBound(
        sample, r.threads, std::chrono::milliseconds(static_cast<int64_t>(o.bound_seconds * 1000)));
    bounds.push_back(b);
    r.bounds += fmt::format("{}{} {:.0f}", r.bounds.empty() ? "" : ", ", when, b);
    return b;
  };
  bound("start");

  // A broker with enough partitions that the development broker keeps every record
  // (about 5 MiB per partition; ~230 bytes a record; keep under 2 MiB each).
  r.partitions = static_cast<int>(std::max<uint64_t>(8, planned * 230 / (2u << 20) + 1));
  BrokerOptions bo;
  bo.topics = {{"g60.events", r.partitions}};
  auto broker = DevBroker::Start(bo);
  if (!broker) return Fail(broker.error());
  ProducerOptions po;
  po.bootstrap = (*broker)->bootstrap();
  // The events already in the broker are produced in large batches. The development
  // broker answers each fetch with one producer batch per partition and finds it by
  // walking the partition's batches from the start, so a log of one-record batches
  // (what a 5 ms linger gives across 115 partitions at 10^6 events) makes its fetches
  // cost O(n) each and its thread took 38% of both cores. A real broker reads by offset
  // index and returns up to max.partition.fetch.bytes whatever the batching.
  ProducerOptions bulk = po;
  bulk.kafka["linger.ms"] = "1000";
  bulk.kafka["batch.num.messages"] = "10000";
  bulk.kafka["batch.size"] = "1000000";
  auto producer = Producer::Create(bulk);
  if (!producer) return Fail(producer.error());
  spdlog::info("bench: producing {} events to {} partition(s)", planned, r.partitions);
  auto produce_start = Clock::now();
  uint64_t messages = 0;
  for (const auto& step : steps) {
    for (const auto& pe : step.events) {
      std::string value = SignDemoEvent(step, pe.event, keys);
      if (step.control) {
        G60_TRY((*producer)->SendToAll(value, pe.event.event_id()));
        messages += static_cast<uint64_t>(r.partitions);
      } else {
        G60_TRY((*producer)->Send(pe.event.applicant_id(), value, pe.event.event_id()));
        ++messages;
      }
    }
    auto delivered = (*producer)->Flush();  // steps in order, as the demo produces them
    if (!delivered) return Fail(delivered.error());
    if (!delivered->failures.empty()) {
      return Fail(
          Error::Unavailable("bench: delivery failed: " + delivered->failures.front().error));
    }
  }
  r.produce_per_s = static_cast<double>(messages) / Seconds(produce_start, Clock::now());

  // (b) Ingest into a durable ledger on disk.
  std::string dir = o.work_dir + "/bench-ledger";
  std::filesystem::remove_all(dir);
  LedgerOptions lo;
  lo.dir = dir;
  lo.writer = true;
  lo.map_size_bytes = std::max<size_t>(size_t{256} << 20, messages * 4096);
  lo.trust_anchors = {keys.admin.public_key};
  auto ledger = Ledger::Open(lo);
  if (!ledger) return Fail(ledger.error());
  IngestOptions io;
  io.bootstrap = (*broker)->bootstrap();
  io.until_caught_up = true;
  io.assign_all = true;
  io.verify_threads = o.threads;
  io.batch_max_messages = o.batch_max_messages;
  io.batch_max_ms = o.batch_max_ms;
  // The development broker answers a fetch that finds no data only after the consumer's
  // whole fetch.wait.max.ms (500 ms by default; librdkafka's mock cluster does not cut
  // the long poll short when data arrives, as a real broker does). That would put up to
  // half a second of broker idling into every latency figure, so the bench asks for 5 ms.
  io.kafka["fetch.wait.max.ms"] = "5";
  double before_ingest = bound("before ingest");
  r.rss_before_ingest_mib = ProcMib("VmRSS:");
  ResetPeakRss();
  spdlog::info("bench: ingesting {} records", messages);
  std::atomic<bool> stop{false};
  double cpu0 = CpuSeconds();
  auto stats = RunIngest(**ledger, io, stop);
  r.ingest_cpu_seconds = CpuSeconds() - cpu0;
  if (!stats) return Fail(stats.error());
  r.rss_peak_ingest_mib = ProcMib("VmHWM:");
  double after_ingest = bound("after ingest");
  r.bound_ingest_per_s = std::max(before_ingest, after_ingest);
  if (stats->appended != messages) {
    return Fail(Error::Internal(
        fmt::format("bench: {} records produced, {} appended", messages, stats->appended)));
  }
  r.entries = stats->appended;
  r.batches = stats->batches;
  r.ingest_wall_seconds = stats->busy_seconds;
  r.ingest_verify_cpu_seconds = stats->verify_cpu_seconds;
  r.ingest_write_cpu_seconds = stats->write_cpu_seconds;
  r.ingest_consume_cpu_seconds = stats->consume_cpu_seconds;
  r.ingest_commit_seconds = stats->commit_seconds;
  r.ingest_per_s = static_cast<double>(stats->appended) / stats->busy_seconds;

  // (c) verify, and the chain alone.
  VerifyOptions vo;
  vo.trust_anchors = {keys.admin.public_key};
  vo.threads = o.threads;
  auto t0 = Clock::now();
  auto report = VerifyLedger(**ledger, vo);
  if (!report) return Fail(report.error());
  if (!report->ok())
    return Fail(Error::DataLoss("bench: verify failed: " + report->first_problem->ToString()));
  r.verify_per_s = static_cast<double>(report->entries) / Seconds(t0, Clock::now());
  r.bound_verify_per_s = std::max(after_ingest, bound("after verify"));
  vo.check_signatures = false;
  t0 = Clock::now();
  report = VerifyLedger(**ledger, vo);
  if (!report || !report->ok()) return Fail(Error::DataLoss("bench: chain check failed"));
  r.chain_per_s = static_cast<double>(report->entries) / Seconds(t0, Clock::now());
  // The full audit: chain, checkpoints, every record decided again, every table compared.
  {
    AuditOptions ao;
    ao.trust_anchors = {keys.admin.public_key};
    ao.threads = o.threads;
    ao.scratch_dir = o.work_dir + "/bench-audit";
    t0 = Clock::now();
    auto audit = AuditLedger(**ledger, ao);
    if (!audit) return Fail(audit.error());
    if (!audit->ok()) {
      return Fail(Error::DataLoss("bench: audit failed: " + audit->first_discrepancy->ToString()));
    }
    r.audit_per_s = static_cast<double>(audit->entries) / Seconds(t0, Clock::now());
    r.audit_check_cpu_seconds = audit->replay_check_cpu_seconds;
    r.audit_apply_cpu_seconds = audit->replay_apply_cpu_seconds;
    for (const auto& [stage, secs] : audit->stage_seconds)
      r.audit_stages +=
          fmt::format("{}{} {:.2f} s", r.audit_stages.empty() ? "" : ", ", stage, secs);
  }
  {
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info((*ledger)->env().get(), &info);
    mdb_env_stat((*ledger)->env().get(), &st);
    r.bytes_per_entry =
        static_cast<double>((info.me_last_pgno + 1) * st.ms_psize) / static_cast<double>(r.entries);
  }

  bound("end");
  r.bound_per_s = *std::max_element(bounds.begin(), bounds.end());

  // Latency: a second stream produced at half the bound while the ingest runs.
  r.latency_rate_per_s = o.latency_rate > 0 ? o.latency_rate : r.bound_per_s / 2;
  DemoStreamOptions lso = so;
  lso.seed = 100;
  lso.first_serial = 10'000'000;
  lso.applicants =
      static_cast<int>(std::max(1.0, r.latency_rate_per_s * o.latency_seconds * 10 / 38));
  auto live = GenerateDemoStream(lso, keys);
  std::vector<std::pair<std::string, std::string>> feed;  // key, value (business events only)
  for (const auto& step : live) {
    if (step.control) continue;
    for (const auto& pe : step.events)
      feed.emplace_back(pe.event.applicant_id(), SignDemoEvent(step, pe.event, keys));
  }
  // The live stream goes through a producer with the default linger (5 ms), as a
  // finance system's would.
  producer = Producer::Create(po);
  if (!producer) return Fail(producer.error());
  std::mutex mu;
  std::vector<double> latencies;
  io.until_caught_up = false;
  io.on_commit = [&](const std::vector<Record>& records, const std::vector<AppendOutcome>&) {
    int64_t now = WallMs();
    std::lock_guard lock(mu);
    for (const auto& rec : records)
      latencies.push_back(static_cast<double>(now - rec.timestamp_ms));
  };
  std::atomic<bool> stop_live{false};
  Result<IngestStats> live_stats = Fail(Error::Internal("not run"));
  std::thread ingest([&] { live_stats = RunIngest(**ledger, io, stop_live); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // assignment and first fetch
  auto pace_start = Clock::now();
  for (size_t i = 0; i < feed.size(); ++i) {
    // Pace: event i leaves at i / rate seconds.
    auto due = pace_start +
               std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(static_cast<double>(i) / r.latency_rate_per_s));
    if (due > Clock::now()) std::this_thread::sleep_until(due);
    G60_TRY((*producer)->Send(feed[i].first, feed[i].second, "live"));
  }
  auto flushed = (*producer)->Flush();
  if (!flushed) return Fail(flushed.error());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (latencies.size() >= feed.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop_live = true;
  ingest.join();
  if (!live_stats) return Fail(live_stats.error());
  r.latency_samples = latencies.size();
  r.latency_batches = live_stats->batches;
  r.latency_p50_ms = Percentile(latencies, 0.50);
  r.latency_p99_ms = Percentile(latencies, 0.99);
  ledger->reset();
  if (!o.keep) std::filesystem::remove_all(dir);
  return r;
}

void PrintBench(const BenchReport& r, std::FILE* out) {
  std::fprintf(out, "threads                 %u\n", r.threads);
  std::fprintf(out, "partitions              %d (development broker, in memory)\n", r.partitions);
  std::fprintf(out, "entries                 %llu\n", static_cast<unsigned long long>(r.entries));
  std::fprintf(out, "bound: Ed25519 verify   %.0f /s at the highest (measured %s)\n", r.bound_per_s,
               r.bounds.c_str());
  std::fprintf(out,
               "bound around ingest     %.0f /s, around verify %.0f /s (each the higher of the "
               "measurements just before and after)\n",
               r.bound_ingest_per_s, r.bound_verify_per_s);
  std::fprintf(out, "produce                 %.0f records/s\n", r.produce_per_s);
  std::fprintf(out, "ingest (durable)        %.0f events/s\n", r.ingest_per_s);
  std::fprintf(
      out,
      "ingest batches          %llu (%.0f records each), %.1f s busy, %.1f CPU-s (cores busy "
      "%.2f), %.1f s of it committing\n",
      static_cast<unsigned long long>(r.batches),
      static_cast<double>(r.entries) / static_cast<double>(std::max<uint64_t>(1, r.batches)),
      r.ingest_wall_seconds, r.ingest_cpu_seconds,
      r.ingest_cpu_seconds / std::max(r.ingest_wall_seconds, 1e-9), r.ingest_commit_seconds);
  // The ratio to the bound is the product of two measured factors: how busy the cores
  // were, and what share of the CPU spent per record the signature check itself needs
  // (at the bound's speed, threads / bound CPU-seconds per record).
  const double n = static_cast<double>(std::max<uint64_t>(1, r.entries));
  const double us = 1e6 / n;
  const double signature_us = 1e6 * r.threads / std::max(r.bound_ingest_per_s, 1e-9);
  const double total_us = r.ingest_cpu_seconds * us;
  std::fprintf(
      out,
      "ingest CPU per record   %.1f us: signature checks and decoding %.1f, rules and append "
      "%.1f, consumer %.1f, librdkafka and the development broker %.1f\n",
      total_us, r.ingest_verify_cpu_seconds * us, r.ingest_write_cpu_seconds * us,
      r.ingest_consume_cpu_seconds * us,
      std::max(0.0, r.ingest_cpu_seconds - r.ingest_verify_cpu_seconds -
                        r.ingest_write_cpu_seconds - r.ingest_consume_cpu_seconds) *
          us);
  std::fprintf(out,
               "ingest/bound factors    signature share %.2f (the bound's %.1f us of Ed25519 per "
               "record over the %.1f us spent) x cores busy %.2f of %u\n",
               signature_us / std::max(total_us, 1e-9), signature_us, total_us,
               r.ingest_cpu_seconds / std::max(r.ingest_wall_seconds, 1e-9) / r.threads, r.threads);
  std::fprintf(out, "verify                  %.0f entries/s\n", r.verify_per_s);
  std::fprintf(out, "hash chain only         %.0f entries/s\n", r.chain_per_s);
  std::fprintf(out, "audit (full replay)     %.0f entries/s (%s)\n", r.audit_per_s,
               r.audit_stages.c_str());
  std::fprintf(
      out,
      "audit replay CPU        %.1f us per entry: signature checks %.1f, rules and append to "
      "the scratch ledger %.1f\n",
      (r.audit_check_cpu_seconds + r.audit_apply_cpu_seconds) * us, r.audit_check_cpu_seconds * us,
      r.audit_apply_cpu_seconds * us);
  std::fprintf(
      out,
      "latency at %.0f/s       p50 %.1f ms, p99 %.1f ms (%llu events, produce to commit, %llu "
      "commits)\n",
      r.latency_rate_per_s, r.latency_p50_ms, r.latency_p99_ms,
      static_cast<unsigned long long>(r.latency_samples),
      static_cast<unsigned long long>(r.latency_batches));
  std::fprintf(out, "disk                    %.0f bytes per entry (LMDB pages in use)\n",
               r.bytes_per_entry);
  std::fprintf(out,
               "memory                  %.0f MiB before ingest, %.0f MiB peak during ingest "
               "(the process holds the development broker's records and LMDB's mapped pages)\n",
               r.rss_before_ingest_mib, r.rss_peak_ingest_mib);
  std::fprintf(out, "ratio ingest/bound %.2f\n", r.ingest_per_s / r.bound_ingest_per_s);
  std::fprintf(out, "ratio verify/bound %.2f\n", r.verify_per_s / r.bound_verify_per_s);
  std::fprintf(out, "ratio audit/verify %.2f\n", r.audit_per_s / r.verify_per_s);
}

}  // namespace g60
