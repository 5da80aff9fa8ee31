#include "ops/bench.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "consumers/ingest.h"
#include "ledger/audit.h"
#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/verify.h"
#include "ops/broker.h"
#include "ops/demo_stream.h"
#include "ops/kafka_admin.h"
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

// The stream of the bench and its signing keys.
struct Stream {
  DemoKeys keys = DemoKeys::FromSeed(2026);
  DemoStreamOptions options;
  std::vector<DemoStep> steps;
  uint64_t planned = 0;
};

// Measures the bound: each call runs `bound_seconds` and is kept in the report.
class Bound {
 public:
  Bound(const BenchOptions& o, const Stream& stream, BenchReport& r) : o_(o), r_(r) {
    for (const auto& step : stream.steps) {
      for (const auto& pe : step.events) {
        if (sample_.size() >= 4096) break;
        if (step.signer == DemoSigner::kForged || step.signer == DemoSigner::kRogue) continue;
        Signed s{stream.keys.For(step.signer).public_key, {}};
        G60_ASSERT(s.se.ParseFromString(SignDemoEvent(step, pe.event, stream.keys)));
        sample_.push_back(std::move(s));
      }
    }
  }
  double Measure(const char* when) {
    double b =
        MeasureBound(sample_, r_.threads,
                     std::chrono::milliseconds(static_cast<int64_t>(o_.bound_seconds * 1000)));
    r_.bound_per_s = std::max(r_.bound_per_s, b);
    r_.bounds += fmt::format("{}{} {:.0f}", r_.bounds.empty() ? "" : ", ", when, b);
    return b;
  }

 private:
  const BenchOptions& o_;
  BenchReport& r_;
  std::vector<Signed> sample_;
};

// Where the broker-bound phases run.
struct Target {
  std::string name;  // for the report
  std::string bootstrap;
  std::string topic = "g60.events";
  std::map<std::string, std::string> kafka;  // client properties for both sides
  bool development = false;
};

// The LMDB map of a bench ledger: the stream, and the latency phase's events on top (up
// to half the bound for latency_seconds), at about 2 KiB an entry. Only what is used
// takes disk.
size_t LedgerMapBytes(uint64_t messages) {
  return (size_t{1} << 30) + messages * 4096;
}

// Produces the stream in large batches (the events are already in the broker when the
// ingest starts). The development broker answers each fetch with one producer batch per
// partition and finds it by walking the partition's batches from the start, so a log of
// one-record batches makes its fetches cost O(n) each; a real broker reads by offset
// index, whatever the batching.
Result<uint64_t> ProduceAll(const Target& t, const Stream& stream, BrokerRun& run) {
  ProducerOptions po;
  po.bootstrap = t.bootstrap;
  po.topic = t.topic;
  po.kafka = t.kafka;
  po.kafka["linger.ms"] = "1000";
  po.kafka["batch.num.messages"] = "10000";
  po.kafka["batch.size"] = "1000000";
  auto producer = Producer::Create(po);
  if (!producer) return Fail(producer.error());
  spdlog::info("bench: producing {} events to {} partition(s) of {}", stream.planned,
               run.partitions, t.name);
  auto start = Clock::now();
  uint64_t messages = 0;
  for (const auto& step : stream.steps) {
    for (const auto& pe : step.events) {
      std::string value = SignDemoEvent(step, pe.event, stream.keys);
      if (step.control) {
        G60_TRY((*producer)->SendToAll(value, pe.event.event_id()));
        messages += static_cast<uint64_t>(run.partitions);
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
  run.produce_per_s = static_cast<double>(messages) / Seconds(start, Clock::now());
  return messages;
}

IngestOptions IngestOn(const Target& t, const BenchOptions& o) {
  IngestOptions io;
  io.bootstrap = t.bootstrap;
  io.topic = t.topic;
  io.until_caught_up = true;
  io.assign_all = true;
  io.verify_threads = o.threads;
  io.batch_max_messages = o.batch_max_messages;
  io.batch_max_ms = o.batch_max_ms;
  io.kafka = t.kafka;
  if (t.development) {
    // The development broker answers a fetch that finds no data only after the
    // consumer's whole fetch.wait.max.ms (500 ms by default; librdkafka's mock cluster
    // does not cut the long poll short when data arrives, as a real broker does). That
    // would put up to half a second of broker idling into every latency figure.
    io.kafka["fetch.wait.max.ms"] = "5";
  }
  return io;
}

// Ingests every produced record into a new durable ledger in `dir`, measuring events/s
// against the bound just before and after, the CPU of each stage and the peak RSS.
Result<std::unique_ptr<Ledger>> IngestAll(const Target& t, const BenchOptions& o,
                                          const Stream& stream, uint64_t messages,
                                          const std::string& dir, Bound& bound, BrokerRun& run) {
  std::filesystem::remove_all(dir);
  LedgerOptions lo;
  lo.dir = dir;
  lo.writer = true;
  lo.map_size_bytes = LedgerMapBytes(messages);
  lo.trust_anchors = {stream.keys.admin.public_key};
  auto ledger = Ledger::Open(lo);
  if (!ledger) return Fail(ledger.error());
  double before = bound.Measure("before ingest");
  run.rss_before_ingest_mib = ProcMib("VmRSS:");
  ResetPeakRss();
  spdlog::info("bench: ingesting {} records from {}", messages, t.name);
  std::atomic<bool> stop{false};
  double cpu0 = CpuSeconds();
  auto stats = RunIngest(**ledger, IngestOn(t, o), stop);
  run.ingest_cpu_seconds = CpuSeconds() - cpu0;
  if (!stats) return Fail(stats.error());
  run.rss_peak_ingest_mib = ProcMib("VmHWM:");
  run.bound_ingest_per_s = std::max(before, bound.Measure("after ingest"));
  if (stats->appended != messages) {
    return Fail(Error::Internal(
        fmt::format("bench: {} records produced, {} appended", messages, stats->appended)));
  }
  run.entries = stats->appended;
  run.batches = stats->batches;
  run.ingest_wall_seconds = stats->busy_seconds;
  run.ingest_verify_cpu_seconds = stats->verify_cpu_seconds;
  run.ingest_write_cpu_seconds = stats->write_cpu_seconds;
  run.ingest_consume_cpu_seconds = stats->consume_cpu_seconds;
  run.ingest_commit_seconds = stats->commit_seconds;
  run.ingest_per_s = static_cast<double>(stats->appended) / stats->busy_seconds;
  return ledger;
}

// Latency: a second stream produced at `rate` events/s, with the default linger (5 ms)
// as a finance system's producer would, while a live ingest appends to `ledger`; each
// record's latency runs from its Kafka timestamp to the commit that holds it.
Status MeasureLatency(const Target& t, const BenchOptions& o, const Stream& stream, Ledger& ledger,
                      double rate, BrokerRun& run) {
  run.latency_rate_per_s = rate;
  DemoStreamOptions lso = stream.options;
  lso.seed = 100;
  lso.first_serial = 10'000'000;
  lso.applicants = static_cast<int>(std::max(1.0, rate * o.latency_seconds * 10 / 38));
  std::vector<std::pair<std::string, std::string>> feed;  // key, value (business events only)
  for (const auto& step : GenerateDemoStream(lso, stream.keys)) {
    if (step.control) continue;
    for (const auto& pe : step.events)
      feed.emplace_back(pe.event.applicant_id(), SignDemoEvent(step, pe.event, stream.keys));
  }
  ProducerOptions po;
  po.bootstrap = t.bootstrap;
  po.topic = t.topic;
  po.kafka = t.kafka;
  auto producer = Producer::Create(po);
  if (!producer) return Fail(producer.error());
  std::mutex mu;
  std::vector<double> latencies;
  IngestOptions io = IngestOn(t, o);
  io.until_caught_up = false;
  io.on_commit = [&](const std::vector<Record>& records, const std::vector<AppendOutcome>&) {
    int64_t now = WallMs();
    std::lock_guard lock(mu);
    for (const auto& rec : records)
      latencies.push_back(static_cast<double>(now - rec.timestamp_ms));
  };
  std::atomic<bool> stop{false};
  Result<IngestStats> stats = Fail(Error::Internal("not run"));
  std::thread ingest([&] { stats = RunIngest(ledger, io, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // assignment and first fetch
  auto pace_start = Clock::now();
  Status sent;
  for (size_t i = 0; i < feed.size() && sent; ++i) {
    // Pace: event i leaves at i / rate seconds.
    auto due = pace_start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(i) / rate));
    if (due > Clock::now()) std::this_thread::sleep_until(due);
    sent = (*producer)->Send(feed[i].first, feed[i].second, "live");
  }
  auto flushed = (*producer)->Flush();
  for (int i = 0; i < 100 && sent && flushed; ++i) {
    {
      std::lock_guard lock(mu);
      if (latencies.size() >= feed.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  ingest.join();
  G60_TRY(sent);
  if (!flushed) return Fail(flushed.error());
  if (!stats) return Fail(stats.error());
  run.latency_samples = latencies.size();
  run.latency_batches = stats->batches;
  run.latency_p50_ms = Percentile(latencies, 0.50);
  run.latency_p99_ms = Percentile(latencies, 0.99);
  return {};
}

// verify, the chain alone, and the full audit over the development broker's ledger.
Status VerifyAndAudit(const BenchOptions& o, const Stream& stream, const Ledger& ledger,
                      double bound_before, Bound& bound, BenchReport& r) {
  VerifyOptions vo;
  vo.trust_anchors = {stream.keys.admin.public_key};
  vo.threads = o.threads;
  auto t0 = Clock::now();
  auto report = VerifyLedger(ledger, vo);
  if (!report) return Fail(report.error());
  if (!report->ok())
    return Fail(Error::DataLoss("bench: verify failed: " + report->first_problem->ToString()));
  r.verify_per_s = static_cast<double>(report->entries) / Seconds(t0, Clock::now());
  r.bound_verify_per_s = std::max(bound_before, bound.Measure("after verify"));
  vo.check_signatures = false;
  t0 = Clock::now();
  report = VerifyLedger(ledger, vo);
  if (!report || !report->ok()) return Fail(Error::DataLoss("bench: chain check failed"));
  r.chain_per_s = static_cast<double>(report->entries) / Seconds(t0, Clock::now());
  // The full audit: chain, checkpoints, every record decided again, every table compared.
  AuditOptions ao;
  ao.trust_anchors = {stream.keys.admin.public_key};
  ao.threads = o.threads;
  ao.scratch_dir = o.work_dir + "/bench-audit";
  t0 = Clock::now();
  auto audit = AuditLedger(ledger, ao);
  if (!audit) return Fail(audit.error());
  if (!audit->ok()) {
    return Fail(Error::DataLoss("bench: audit failed: " + audit->first_discrepancy->ToString()));
  }
  r.audit_per_s = static_cast<double>(audit->entries) / Seconds(t0, Clock::now());
  r.audit_check_cpu_seconds = audit->replay_check_cpu_seconds;
  r.audit_apply_cpu_seconds = audit->replay_apply_cpu_seconds;
  for (const auto& [stage, secs] : audit->stage_seconds)
    r.audit_stages += fmt::format("{}{} {:.2f} s", r.audit_stages.empty() ? "" : ", ", stage, secs);
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(ledger.env().get(), &info);
  mdb_env_stat(ledger.env().get(), &st);
  r.bytes_per_entry = static_cast<double>((info.me_last_pgno + 1) * st.ms_psize) /
                      static_cast<double>(r.dev.entries);
  return {};
}

// Ingests on real Kafka with `g60ledger ingest` as a process of its own, so that its peak
// RSS is the ingest's alone (the bench process holds the stream): the same pipeline,
// measured by the child's --stats-json (stages, peak RSS) and wait4 (its CPU time).
Result<std::unique_ptr<Ledger>> IngestInOwnProcess(const Target& t, const BenchOptions& o,
                                                   const Stream& stream, uint64_t messages,
                                                   const std::string& dir, Bound& bound,
                                                   BrokerRun& run) {
  std::filesystem::remove_all(dir);
  const std::string cfg = o.work_dir + "/bench-kafka.toml";
  const std::string stats_path = o.work_dir + "/bench-kafka-ingest.json";
  const std::string log = o.work_dir + "/bench-kafka-ingest.log";
  {
    std::ofstream f(cfg);
    // Absolute: a relative [ledger] dir is taken relative to the configuration file.
    f << "[ledger]\ndir = \"" << std::filesystem::absolute(dir).string()
      << "\"\nmap_size_mib = " << (LedgerMapBytes(messages) >> 20) << "\n"
      << "[kafka]\nbootstrap = \"" << t.bootstrap << "\"\ntopic = \"" << t.topic
      << "\"\ngroup_id = \"g60ledger-bench\"\n"
      << "[trust]\nanchors = [\"" << Base64Encode(stream.keys.admin.public_key) << "\"]\n"
      << "[ingest]\nbatch_max_messages = " << o.batch_max_messages
      << "\nbatch_max_ms = " << o.batch_max_ms << "\nverify_threads = " << o.threads << "\n"
      << "[kafka.consumer]\n";
    for (const auto& [k, v] : t.kafka)
      f << "\"" << k << "\" = \"" << v << "\"\n";
    if (!f) return Fail(Error::ResourceExhausted("cannot write " + cfg));
  }
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return Fail(Error::Internal("cannot find this program: " + ec.message()));
  std::vector<std::string> args = {
      exe,       "ingest", "--config", cfg, "--assign-all", "--until-caught-up", "--stats-json",
      stats_path};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  double before = bound.Measure("before ingest");
  spdlog::info("bench: ingesting {} records from {} in a process of its own", messages, t.name);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Fail(Error::Internal(fmt::format("cannot start {}: errno {}", exe, rc)));
  int status = 0;
  struct rusage ru {};
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Fail(Error::Unavailable(
        fmt::format("the ingest process failed (status {}); see {}", status, log)));
  }
  run.bound_ingest_per_s = std::max(before, bound.Measure("after ingest"));
  run.ingest_cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::ifstream in(stats_path);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return Fail(Error::Internal("cannot read " + stats_path));
  run.entries = j.at("appended").get<uint64_t>();
  if (run.entries != messages) {
    return Fail(Error::Internal(
        fmt::format("bench: {} records produced, {} appended", messages, run.entries)));
  }
  run.batches = j.at("batches").get<uint64_t>();
  run.ingest_wall_seconds = j.at("busy_seconds").get<double>();
  run.ingest_verify_cpu_seconds = j.at("verify_cpu_seconds").get<double>();
  run.ingest_write_cpu_seconds = j.at("write_cpu_seconds").get<double>();
  run.ingest_consume_cpu_seconds = j.at("consume_cpu_seconds").get<double>();
  run.ingest_commit_seconds = j.at("commit_seconds").get<double>();
  // The child's own VmHWM: wait4's ru_maxrss would count this process's pages too, which
  // the child shared until exec.
  run.rss_peak_ingest_mib = j.at("peak_rss_mib").get<double>();
  run.ingest_per_s = static_cast<double>(run.entries) / run.ingest_wall_seconds;
  LedgerOptions lo;
  lo.dir = dir;
  lo.writer = true;
  lo.map_size_bytes = LedgerMapBytes(messages);
  lo.trust_anchors = {stream.keys.admin.public_key};
  return Ledger::Open(lo);
}

// The phases on real Kafka, on a topic of its own (created, then deleted).
Result<BrokerRun> RunOnKafka(const BenchOptions& o, const Stream& stream, int partitions,
                             Bound& bound) {
  BrokerRun run;
  run.broker = "Apache Kafka at " + o.kafka_bootstrap + " (brokers in their own processes)";
  run.partitions = partitions;
  Target t{"real Kafka", o.kafka_bootstrap, fmt::format("g60.bench.{}", ::getpid()),
           o.kafka_properties, false};
  KafkaAdminOptions admin{o.kafka_bootstrap, o.kafka_properties};
  (void)DeleteTopic(admin, t.topic);
  G60_TRY(CreateTopic(admin, t.topic, partitions, -1));
  auto body = [&]() -> Status {
    auto messages = ProduceAll(t, stream, run);
    if (!messages) return Fail(messages.error());
    std::string dir = o.work_dir + "/bench-kafka-ledger";
    auto ledger = IngestInOwnProcess(t, o, stream, *messages, dir, bound, run);
    if (!ledger) return Fail(ledger.error());
    double rate = o.latency_rate > 0 ? o.latency_rate : bound.Measure("before latency") / 2;
    G60_TRY(MeasureLatency(t, o, stream, **ledger, rate, run));
    ledger->reset();
    if (!o.keep) std::filesystem::remove_all(dir);
    return {};
  };
  Status s = body();
  (void)DeleteTopic(admin, t.topic);
  if (!s) return Fail(s.error().Context("bench on real Kafka"));
  return run;
}

}  // namespace

Result<BenchReport> RunBench(const BenchOptions& o) {
  CryptoInit();
  BenchReport r;
  r.threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  auto catalog = LoadCatalogText(o.catalog_path);
  if (!catalog) return Fail(catalog.error());
  Stream stream;
  stream.options.catalog = *catalog;
  stream.options.scenarios = false;
  stream.options.seed = 99;
  stream.options.applicants =
      static_cast<int>(std::max<uint64_t>(1, o.events * 10 / 38));  // ~3.8 events each
  stream.steps = GenerateDemoStream(stream.options, stream.keys);
  for (const auto& s : stream.steps)
    stream.planned += s.events.size();

  spdlog::info("bench: measuring the Ed25519 verify bound on {} thread(s)", r.threads);
  Bound bound(o, stream, r);
  bound.Measure("start");

  // A broker with enough partitions that the development broker keeps every record
  // (about 5 MiB per partition; ~230 bytes a record; keep under 2 MiB each).
  const int partitions =
      static_cast<int>(std::max<uint64_t>(8, stream.planned * 230 / (2u << 20) + 1));
  r.dev.broker = "development broker (librdkafka mock cluster, in this process)";
  r.dev.partitions = partitions;
  BrokerOptions bo;
  bo.topics = {{"g60.events", partitions}};
  auto broker = DevBroker::Start(bo);
  if (!broker) return Fail(broker.error());
  Target dev{"the development broker", (*broker)->bootstrap(), "g60.events", {}, true};
  auto messages = ProduceAll(dev, stream, r.dev);
  if (!messages) return Fail(messages.error());
  std::string dir = o.work_dir + "/bench-ledger";
  auto ledger = IngestAll(dev, o, stream, *messages, dir, bound, r.dev);
  if (!ledger) return Fail(ledger.error());
  G60_TRY(VerifyAndAudit(o, stream, **ledger, r.dev.bound_ingest_per_s, bound, r));
  double rate = o.latency_rate > 0 ? o.latency_rate : bound.Measure("end") / 2;
  G60_TRY(MeasureLatency(dev, o, stream, **ledger, rate, r.dev));
  ledger->reset();
  broker->reset();
  if (!o.keep) std::filesystem::remove_all(dir);

  if (!o.kafka_bootstrap.empty()) {
    auto kafka = RunOnKafka(o, stream, partitions, bound);
    if (!kafka) return Fail(kafka.error());
    r.kafka = std::move(*kafka);
  }
  return r;
}

namespace {

void PrintRun(const BrokerRun& r, unsigned threads, std::FILE* out) {
  std::fprintf(out, "-- on the %s\n", r.broker.c_str());
  std::fprintf(out, "partitions              %d\n", r.partitions);
  std::fprintf(out, "entries                 %llu\n", static_cast<unsigned long long>(r.entries));
  std::fprintf(out, "bound around ingest     %.0f /s (the higher of just before and after)\n",
               r.bound_ingest_per_s);
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
  const double signature_us = 1e6 * threads / std::max(r.bound_ingest_per_s, 1e-9);
  const double total_us = r.ingest_cpu_seconds * us;
  std::fprintf(
      out,
      "ingest CPU per record   %.1f us: signature checks and decoding %.1f, rules and append "
      "%.1f, consumer %.1f, librdkafka%s %.1f\n",
      total_us, r.ingest_verify_cpu_seconds * us, r.ingest_write_cpu_seconds * us,
      r.ingest_consume_cpu_seconds * us,
      r.broker.rfind("development", 0) == 0 ? " and the development broker" : "",
      std::max(0.0, r.ingest_cpu_seconds - r.ingest_verify_cpu_seconds -
                        r.ingest_write_cpu_seconds - r.ingest_consume_cpu_seconds) *
          us);
  std::fprintf(out,
               "ingest/bound factors    signature share %.2f (the bound's %.1f us of Ed25519 per "
               "record over the %.1f us spent) x cores busy %.2f of %u\n",
               signature_us / std::max(total_us, 1e-9), signature_us, total_us,
               r.ingest_cpu_seconds / std::max(r.ingest_wall_seconds, 1e-9) / threads, threads);
  std::fprintf(
      out,
      "latency at %.0f/s       p50 %.1f ms, p99 %.1f ms (%llu events, produce to commit, %llu "
      "commits)\n",
      r.latency_rate_per_s, r.latency_p50_ms, r.latency_p99_ms,
      static_cast<unsigned long long>(r.latency_samples),
      static_cast<unsigned long long>(r.latency_batches));
  if (r.broker.rfind("development", 0) == 0) {
    std::fprintf(out,
                 "memory                  %.0f MiB before ingest, %.0f MiB peak during ingest (the "
                 "bench process: the development broker's records, the stream, LMDB's pages)\n",
                 r.rss_before_ingest_mib, r.rss_peak_ingest_mib);
  } else {
    std::fprintf(out,
                 "memory                  %.0f MiB peak RSS of the ingest process (g60ledger "
                 "ingest on its own; the brokers are other processes)\n",
                 r.rss_peak_ingest_mib);
  }
}

}  // namespace

void PrintBench(const BenchReport& r, std::FILE* out) {
  std::fprintf(out, "threads                 %u\n", r.threads);
  std::fprintf(out, "bound: Ed25519 verify   %.0f /s at the highest (measured %s)\n", r.bound_per_s,
               r.bounds.c_str());
  PrintRun(r.dev, r.threads, out);
  const double us = 1e6 / static_cast<double>(std::max<uint64_t>(1, r.dev.entries));
  std::fprintf(out, "verify                  %.0f entries/s (bound around it %.0f /s)\n",
               r.verify_per_s, r.bound_verify_per_s);
  std::fprintf(out, "hash chain only         %.0f entries/s\n", r.chain_per_s);
  std::fprintf(out, "audit (full replay)     %.0f entries/s (%s)\n", r.audit_per_s,
               r.audit_stages.c_str());
  std::fprintf(
      out,
      "audit replay CPU        %.1f us per entry: signature checks %.1f, rules and append to "
      "the scratch ledger %.1f\n",
      (r.audit_check_cpu_seconds + r.audit_apply_cpu_seconds) * us, r.audit_check_cpu_seconds * us,
      r.audit_apply_cpu_seconds * us);
  std::fprintf(out, "disk                    %.0f bytes per entry (LMDB pages in use)\n",
               r.bytes_per_entry);
  if (r.kafka) PrintRun(*r.kafka, r.threads, out);
  std::fprintf(out, "ratio ingest/bound %.2f\n", r.dev.ingest_per_s / r.dev.bound_ingest_per_s);
  std::fprintf(out, "ratio verify/bound %.2f\n", r.verify_per_s / r.bound_verify_per_s);
  std::fprintf(out, "ratio audit/verify %.2f\n", r.audit_per_s / r.verify_per_s);
  if (r.kafka) {
    std::fprintf(out, "ratio kafka-ingest/bound %.2f\n",
                 r.kafka->ingest_per_s / r.kafka->bound_ingest_per_s);
    std::fprintf(out, "ratio kafka-latency-p99/100ms %.2f\n", r.kafka->latency_p99_ms / 100.0);
  }
}

}  // namespace g60
