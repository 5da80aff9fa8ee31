// Exactly once end to end on a real, replicated Apache Kafka cluster (three brokers,
// replication factor 3, min.insync.replicas 2): signed events produced by the idempotent
// producer (acks=all) while the ingest is SIGKILLed at random points and brokers are
// SIGKILLed and restarted (leaders move), then the whole cluster stopped and started
// again from disk. Every message must be exactly one entry, and the ledger must equal a
// clean replica that consumed the same topic once.
#include <chrono>
#include <thread>

#include "kafka/real_kafka.h"
#include "ledger/replay.h"

using namespace g60;
using namespace g60::testing;

namespace {

struct Feed {
  std::atomic<uint64_t> messages{0};
  std::atomic<bool> done{false};
  std::string error;  // set by the feeder thread before done, when it failed
};

// Produces the demo stream of about `events` signed events, spread over `seconds`. Runs
// on a thread of its own: no Catch assertion here, a failure is left in feed.error.
Status Produce(Producer& producer, int events, double seconds, Feed& feed) {
  DemoStreamOptions so;
  so.applicants = std::max(50, events * 10 / 39);  // ~3.9 events per applicant
  so.seed = 12;
  so.catalog = TestCatalog();
  auto steps = GenerateDemoStream(so, Keys());
  auto partitions = producer.PartitionCount();
  if (!partitions) return Fail(partitions.error());
  const auto pause = std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6 * 200 / events));
  uint64_t sent = 0, paused_at = 0;
  for (const auto& step : steps) {
    for (const auto& pe : step.events) {
      auto n = TrySendEvent(producer, step, pe, *partitions);
      if (!n) return Fail(n.error());
      sent += *n;
      if (sent - paused_at >= 200) {
        paused_at = sent;
        std::this_thread::sleep_for(pause);
      }
    }
    auto delivered = producer.Flush();  // steps in order, as the demo does
    if (!delivered) return Fail(delivered.error());
    if (!delivered->failures.empty()) {
      return Fail(Error::Unavailable(fmt::format("{} delivery failure(s), first: {}",
                                                 delivered->failures.size(),
                                                 delivered->failures[0].error)));
    }
  }
  feed.messages = sent;
  return {};
}

}  // namespace

TEST_CASE("real Kafka: ingest and brokers SIGKILLed, cluster restarted: every message one entry",
          "[.realkafka][trio]") {
  RealKafka k = Cluster();
  REQUIRE(k.brokers == 3);
  const int events = std::atoi(Env("G60_KAFKA_EVENTS", "20000").c_str());
  // The long kill loop (docs/kafka.md): G60_KILL_CYCLES=1000 with shorter cycles
  // (G60_KILL_MAX_MS) and a broker killed every G60_KILL_BROKER_EVERY-th cycle.
  const int cycles =
      std::atoi(Env("G60_KILL_CYCLES", std::to_string(std::max(6, events / 2500))).c_str());
  const int broker_every = std::max(1, std::atoi(Env("G60_KILL_BROKER_EVERY", "2").c_str()));
  const int max_ms = std::max(300, std::atoi(Env("G60_KILL_MAX_MS", "3000").c_str()));
  const int min_ms = std::min(500, max_ms / 3);
  TestTopic topic(k, "exactly-once", 8);
  TempDir dir;
  std::string cfg = WriteConfig(dir.path(), k, topic.name(), "exactly-once");

  Feed feed;
  auto producer = RealProducer(k, topic.name());
  std::thread feeder([&] {
    // Spread over about as long as the loop takes (0.5-3 s a cycle, and a broker's
    // restart of 2-8 s every other one), so that the kills fall while events arrive.
    const double cycle_s = (min_ms + max_ms) / 2000.0 + 5.0 / broker_every;
    if (auto s = Produce(*producer, events, cycles * cycle_s, feed); !s)
      feed.error = s.error().ToString();
    feed.done = true;
  });
  std::vector<std::string> ingest = {G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all"};
  uint64_t seed = 1234567;
  int ingest_kills = 0, broker_kills = 0, while_producing = 0;
  for (int c = 0; c < cycles; ++c) {
    Child node(ingest, dir / "ingest.log");
    // Every other cycle one broker (in turn) is killed too, and started again at the end
    // of the cycle: one broker at most is down, so acks=all with min.insync.replicas=2
    // still succeeds, and the partitions it led elect new leaders.
    int broker = c % broker_every == broker_every - 1 ? 1 + (c / broker_every) % 3 : 0;
    if (broker) {
      auto r = KafkaCtl(k, {"kill-broker", std::to_string(broker)}, dir / "kafkactl.log");
      INFO(r.output);
      REQUIRE(r.status == 0);
      ++broker_kills;
    }
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(min_ms + (seed >> 33) % static_cast<uint64_t>(max_ms - min_ms)));
    while_producing += !feed.done.load();
    node.Kill(SIGKILL);
    int status = node.Wait();
    INFO(node.Output());
    CHECK((status == 128 + SIGKILL || status == 0));
    ingest_kills += status == 128 + SIGKILL;
    if (broker) {
      auto r = KafkaCtl(k, {"start-broker", std::to_string(broker)}, dir / "kafkactl.log");
      INFO(r.output);
      REQUIRE(r.status == 0);
    }
  }
  feeder.join();
  INFO(feed.error);
  REQUIRE(feed.error.empty());
  CHECK(ingest_kills >= cycles * 8 / 10);
  CHECK(while_producing >= cycles / 4);  // how many depends on the machine's speed

  // The whole cluster stopped and started again from its data directories.
  auto stopped = KafkaCtl(k, {"stop"}, dir / "stop.log");
  INFO(stopped.output);
  REQUIRE(stopped.status == 0);
  auto started = KafkaCtl(k, {"start"}, dir / "start.log");
  INFO(started.output);
  REQUIRE(started.status == 0);

  auto final_run =
      Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--assign-all", "--until-caught-up"},
          dir / "final.log");
  INFO(final_run.output);
  REQUIRE(final_run.status == 0);
  WARN(feed.messages.load() << " messages; " << ingest_kills << " ingest kills (" << while_producing
                            << " while producing), " << broker_kills
                            << " broker kills, then the cluster restarted");
  auto ledger = OpenReader(dir / "ledger");
  RequireOneEntryPerMessage(*ledger, feed.messages);
  RequireVerified(*ledger);

  // A clean replica: one uninterrupted ingest of the same topic.
  TempDir clean;
  auto replica = OpenTestLedger(clean.path(), size_t{1} << 30, 8);
  IngestOptions io = RealIngest(k, topic.name(), "exactly-once-replica");
  io.assign_all = true;
  std::atomic<bool> stop{false};
  auto stats = RunIngest(*replica, io, stop);
  INFO((stats ? "" : stats.error().ToString()));
  REQUIRE(stats.has_value());
  auto a = ledger->Heads();
  auto b = replica->Heads();
  REQUIRE(a->size() == b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    INFO("partition " << (*a)[i].partition);
    CHECK((*a)[i].size == (*b)[i].size);
    CHECK((*a)[i].next_offset == (*b)[i].next_offset);
    CHECK((*a)[i].head_hash == (*b)[i].head_hash);
  }
  auto diff = CompareLedgers(*ledger, *replica);
  REQUIRE(diff.has_value());
  INFO(diff->value_or(""));
  CHECK_FALSE(diff->has_value());
}
