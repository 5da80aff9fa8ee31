// Ingest under faults: SIGKILL at random points while events keep arriving, broker
// failures injected through the mock cluster's fault API, data deleted from the broker,
// a full LMDB map, a second writer, SIGTERM. After each: one entry per message, the
// chain verifies, and the state equals a from-scratch replay.
//
// G60_KILL_CYCLES sets the SIGKILL loop's cycles (default 20; run 50 or more by hand:
// G60_KILL_CYCLES=60 build/release/g60_tests '[sigkill]').
#include <librdkafka/rdkafka.h>
// (rdkafka_mock.h must follow rdkafka.h)
#include <librdkafka/rdkafka_mock.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "integration/harness.h"
#include "ledger/bytes.h"
#include "ledger/replay.h"
#include "process.h"

using namespace g60;
using namespace g60::testing;
using namespace std::chrono_literals;

namespace {

constexpr int16_t kFetchApiKey = 1;  // Kafka protocol ApiKey of Fetch

// Writes a configuration for the CLI ingest, trusting the test admin key.
std::string WriteIngestConfig(const TempDir& dir, const std::string& bootstrap,
                              const std::string& extra = "") {
  std::ofstream cfg(dir / "ingest.toml");
  cfg << "[ledger]\ndir = \"ledger\"\nmap_size_mib = 256\n"
      << "[kafka]\nbootstrap = \"" << bootstrap << "\"\ngroup_id = \"faults\"\n"
      << "[trust]\nanchors = [\"" << Base64Encode(Keys().admin.public_key) << "\"]\n"
      << "[ingest]\nbatch_max_messages = 200\nbatch_max_ms = 20\n"
      << extra;
  return dir / "ingest.toml";
}

// The ledger replayed from scratch (its own records through the rules) equals itself.
void RequireReplayEqual(const Ledger& ledger) {
  TempDir copy;
  auto replica = OpenTestLedger(copy.path(), size_t{512} << 20, ledger.partition_count());
  REQUIRE(ReplayLedger(ledger, *replica).has_value());
  auto diff = CompareLedgers(ledger, *replica);
  REQUIRE(diff.has_value());
  INFO(diff->value_or(""));
  REQUIRE_FALSE(diff->has_value());
}

DemoStreamOptions Stream(int applicants, uint64_t seed) {
  DemoStreamOptions so;
  so.applicants = applicants;
  so.seed = seed;
  so.catalog = TestCatalog();
  return so;
}

IngestOptions CaughtUp(const std::string& bootstrap, const std::string& group) {
  IngestOptions io;
  io.bootstrap = bootstrap;
  io.until_caught_up = true;
  io.group_id = group;
  return io;
}

}  // namespace

TEST_CASE("SIGKILL at random points while events arrive: exactly one entry each, state = replay",
          "[integration][kafka][faults][sigkill]") {
  int cycles = 20;
  if (const char* env = std::getenv("G60_KILL_CYCLES")) cycles = std::atoi(env);
  auto broker = StartBroker();
  TempDir dir;
  std::string cfg = WriteIngestConfig(dir, broker->bootstrap());
  auto steps = GenerateDemoStream(Stream(800, 21), Keys());
  std::atomic<uint64_t> messages{0};
  std::atomic<bool> produced{false};
  // The feeder spreads the stream over the kill loop (about 0.3 s a cycle), so that the
  // ingest is killed while events keep arriving.
  uint64_t planned = 0;
  for (const auto& st : steps)
    planned += st.events.size();
  const auto pause =
      std::chrono::microseconds(static_cast<int64_t>(cycles) * 300000 * 50 /
                                static_cast<int64_t>(std::max<uint64_t>(planned, 1)));
  std::thread feeder([&] {
    auto producer = MakeProducer(broker->bootstrap());
    const int partitions = *producer->PartitionCount();
    uint64_t sent = 0;
    for (const auto& step : steps) {
      for (const auto& pe : step.events) {
        sent += SendEvent(*producer, step, pe, partitions);
        if (sent % 50 == 0) std::this_thread::sleep_for(pause);
      }
      REQUIRE(producer->Flush()->failures.empty());  // steps in order, as the demo does
    }
    messages = sent;
    produced = true;
  });
  std::vector<std::string> args = {G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all"};
  uint64_t seed = 77;
  int kills = 0, kills_while_producing = 0;
  for (int c = 0; c < cycles; ++c) {
    Child ingest(args, dir / "ingest.log");
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + (seed >> 33) % 400));
    bool producing = !produced.load();
    ingest.Kill(SIGKILL);
    int status = ingest.Wait();
    CHECK((status == 128 + SIGKILL || status == 0));
    kills += status == 128 + SIGKILL;
    kills_while_producing += producing;
  }
  feeder.join();
  REQUIRE(produced);
  CHECK(kills >= cycles * 9 / 10);
  CHECK(kills_while_producing >= cycles / 2);
  WARN(kills << " kills, " << kills_while_producing << " while events were arriving, "
             << EntriesIn(dir / "ledger") << " entries before the final run");
  auto final_run =
      Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up"},
          dir / "final.log");
  INFO(final_run.output);
  REQUIRE(final_run.status == 0);
  auto ledger = OpenReader(dir / "ledger");
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);
  RequireReplayEqual(*ledger);
}

TEST_CASE(
    "broker down and up, latency, request errors and leader changes: ingest waits and resumes",
    "[integration][kafka][faults]") {
  auto broker = StartBroker();
  rd_kafka_mock_cluster_t* mock = broker->cluster();
  auto producer = MakeProducer(broker->bootstrap());
  Expectations expect;
  uint64_t messages = ProduceStream(*producer, GenerateDemoStream(Stream(300, 22), Keys()), expect);
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path(), size_t{256} << 20, kPartitions);
  std::atomic<bool> stop{false};
  Result<IngestStats> result = Fail(Error::Internal("not run"));
  IngestOptions io = CaughtUp(broker->bootstrap(), "faults-broker");
  io.batch_max_messages = 50;
  io.kafka["session.timeout.ms"] = "6000";
  // Faults from the start: every broker slow, fetches failing, broker 1 away for a while.
  for (int32_t b = 1; b <= 3; ++b)
    rd_kafka_mock_broker_set_rtt(mock, b, 50);
  rd_kafka_mock_push_request_errors(
      mock, kFetchApiKey, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
  rd_kafka_mock_broker_set_down(mock, 1);
  std::thread ingest([&] { result = RunIngest(*ledger, io, stop); });
  std::this_thread::sleep_for(2s);
  for (int32_t p = 0; p < kPartitions; ++p)
    rd_kafka_mock_partition_set_leader(mock, "g60.events", p, 2 + p % 2);
  std::this_thread::sleep_for(1s);
  rd_kafka_mock_broker_set_up(mock, 1);
  for (int32_t b = 1; b <= 3; ++b)
    rd_kafka_mock_broker_set_rtt(mock, b, 0);
  ingest.join();
  INFO((result ? std::string() : result.error().ToString()));
  REQUIRE(result.has_value());
  CHECK(result->appended == messages);
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);
  Census c = ReadAll(*ledger);
  for (const auto& [id, reasons] : expect) {
    INFO("event " << id);
    CHECK(c.seen[id] == reasons);
  }
}

TEST_CASE("data gone from the broker: ingest stops with a clear error and never skips",
          "[integration][kafka][faults]") {
  // One partition, filled far beyond what the development broker keeps (about 5 MiB):
  // the oldest records are dropped, so offset 0 is gone.
  auto broker = StartBroker(1);
  auto producer = MakeProducer(broker->bootstrap());
  std::string big(100 * 1024, 'x');
  for (int i = 0; i < 120; ++i)
    REQUIRE(producer->Send("91310117FILLER0000", big, "filler").has_value());
  REQUIRE(producer->Flush()->failures.empty());
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path(), size_t{256} << 20, 1);
  std::atomic<bool> stop{false};
  auto result = RunIngest(*ledger, CaughtUp(broker->bootstrap(), "faults-gone"), stop);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == ErrorCode::kDataLoss);
  CHECK_THAT(result.error().message(), Catch::Contains("no longer has offsets 0..") &&
                                           Catch::Contains("deleted by retention"));
  CHECK((*ledger->Heads()).empty());  // nothing skipped, nothing appended out of order
}

TEST_CASE(
    "a full LMDB map stops ingest with a clear error, it resumes after the map grows, and readers "
    "adopt the grown map",
    "[integration][kafka][faults]") {
  auto broker = StartBroker();
  auto producer = MakeProducer(broker->bootstrap());
  Expectations unused;
  uint64_t messages = ProduceStream(*producer, GenerateDemoStream(Stream(600, 23), Keys()), unused);
  TempDir dir;
  std::string cfg = WriteIngestConfig(dir, broker->bootstrap());
  auto full = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up",
                   "--map-size-mib", "1"},
                  dir / "full.log");
  INFO(full.output);
  CHECK(full.status == 3);
  CHECK_THAT(full.output, Catch::Contains("map is full") && Catch::Contains("map_size_mib"));
  uint64_t before = EntriesIn(dir / "ledger");
  CHECK(before < messages);
  // A long-lived reader (as `serve` is) opened on the full ledger, with its 1 MiB map.
  LedgerOptions ro;
  ro.dir = dir / "ledger";
  ro.map_size_bytes = size_t{1} << 20;
  ro.trust_anchors = {Keys().admin.public_key};
  auto reader = Ledger::Open(ro);
  REQUIRE(reader.has_value());
  REQUIRE((*reader)->env().map_size() == size_t{1} << 20);
  auto resumed = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up",
                      "--map-size-mib", "64"},
                     dir / "resumed.log");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  // The writer filled the grown map past the reader's: the reader adopts the new size
  // and reads on, without a restart.
  auto heads = (*reader)->Heads();
  REQUIRE(heads.has_value());
  uint64_t seen = 0;
  for (const auto& h : *heads)
    seen += h.size;
  CHECK(seen == messages);
  CHECK((*reader)->env().map_size() == size_t{64} << 20);
  RequireOneEntryPerMessage(**reader, messages);
  reader->reset();
  auto ledger = OpenReader(dir / "ledger");
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);
}

TEST_CASE("two ingest processes on one ledger: the second says the first holds it",
          "[integration][kafka][faults]") {
  auto broker = StartBroker();
  TempDir dir;
  std::string cfg = WriteIngestConfig(dir, broker->bootstrap());
  Child first({G60LEDGER_BIN, "ingest", "--config", cfg}, dir / "first.log");
  for (int i = 0; i < 100 && !std::filesystem::exists(dir / "ledger/writer.lock"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(300ms);
  auto second = Run({G60LEDGER_BIN, "ingest", "--config", cfg}, dir / "second.log");
  CHECK(second.status == 3);
  CHECK_THAT(second.output,
             Catch::Contains("another process (pid") && Catch::Contains("one writer per ledger"));
  CHECK(first.Running());
  first.Kill(SIGTERM);
  CHECK(first.Wait() == 0);
}

TEST_CASE("SIGTERM commits what was consumed and exits cleanly, and metrics are served",
          "[integration][kafka][faults][metrics]") {
  auto broker = StartBroker();
  auto producer = MakeProducer(broker->bootstrap());
  Expectations unused;
  uint64_t messages = ProduceStream(*producer, GenerateDemoStream(Stream(300, 24), Keys()), unused);
  TempDir dir;
  std::string cfg =
      WriteIngestConfig(dir, broker->bootstrap(), "metrics_listen = \"127.0.0.1:19464\"\n");
  Child ingest({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all"}, dir / "ingest.log");
  for (int i = 0; i < 200 && EntriesIn(dir / "ledger") < messages; ++i)
    std::this_thread::sleep_for(50ms);
  REQUIRE(EntriesIn(dir / "ledger") == messages);
  auto scrape = Run({"/usr/bin/curl", "-s", "http://127.0.0.1:19464/metrics"}, dir / "metrics.txt");
  CHECK(scrape.status == 0);
  CHECK_THAT(scrape.output,
             Catch::Contains("g60_messages_consumed_total " + std::to_string(messages)));
  CHECK_THAT(scrape.output, Catch::Contains("g60_entries_rejected_total{reason=\"UNKNOWN_KEY\"}"));
  CHECK_THAT(scrape.output, Catch::Contains("g60_partition_lag{partition=\"0\"} 0"));
  CHECK_THAT(scrape.output, Catch::Contains("g60_batch_commit_seconds_count"));
  CHECK_THAT(scrape.output, Catch::Contains("g60_verify_queue_depth"));
  ingest.Kill(SIGTERM);
  CHECK(ingest.Wait() == 0);
  CHECK_THAT(ingest.Output(), Catch::Contains(std::to_string(messages) + " entr(ies) appended"));
}

TEST_CASE("SIGTERM stops an ingest that is still waiting for an unreachable cluster",
          "[integration][kafka][faults]") {
  // Nothing listens on the port: the cluster never answers. With --assign-all, ingest
  // waits for the topic's metadata before it can consume; SIGTERM must end the wait.
  TempDir dir;
  std::string cfg = WriteIngestConfig(dir, "127.0.0.1:9");
  Child ingest({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all"}, dir / "ingest.log");
  std::this_thread::sleep_for(1500ms);
  REQUIRE(ingest.Running());
  auto sent = std::chrono::steady_clock::now();
  ingest.Kill(SIGTERM);
  int status = ingest.Wait();
  auto waited = std::chrono::steady_clock::now() - sent;
  INFO(ingest.Output());
  CHECK(status == 0);
  CHECK_THAT(ingest.Output(), Catch::Contains("stopped before the Kafka cluster answered"));
  // Prompt: within the 1 s metadata request in flight, far from the minutes it took.
  CHECK(waited < 10s);
}

TEST_CASE("a full disk stops ingest with a clear error, and it resumes once space is freed",
          "[integration][kafka][faults][disk]") {
  // A small tmpfs stands for the ledger's disk; growing it stands for freeing space.
  REQUIRE(::geteuid() == 0);  // mounting needs root, as CI and ops/test run
  auto broker = StartBroker();
  auto producer = MakeProducer(broker->bootstrap());
  Expectations unused;
  uint64_t messages =
      ProduceStream(*producer, GenerateDemoStream(Stream(1500, 25), Keys()), unused);
  TempDir dir;
  std::filesystem::create_directories(dir / "ledger");
  std::string mnt = dir / "ledger";
  REQUIRE(
      Run({"/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt}, dir / "mount.log").status ==
      0);
  struct Unmount {
    std::string path;
    ~Unmount() { std::system(("umount " + path + " 2>/dev/null").c_str()); }
  } unmount{mnt};
  std::string cfg = WriteIngestConfig(dir, broker->bootstrap());
  auto full = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up"},
                  dir / "full.log");
  INFO(full.output);
  CHECK(full.status == 3);
  CHECK_THAT(full.output, Catch::Contains("disk is full"));
  uint64_t before = EntriesIn(mnt);
  CHECK(before < messages);
  REQUIRE(Run({"/bin/mount", "-o", "remount,size=64m", mnt}, dir / "remount.log").status == 0);
  auto resumed =
      Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up"},
          dir / "resumed.log");
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  auto ledger = OpenReader(mnt);
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);
  RequireReplayEqual(*ledger);
}
