// Scale-out on real Kafka: three ingest processes in one consumer group, each with its
// own ledger, share a topic of 12 partitions. One is SIGKILLed; the group gives its
// partitions to the other two, which go on from the offsets their own ledgers store (or
// from offset 0 for a partition new to them). verify-set then checks the three ledgers
// together: every partition held, and wherever two hold one, the shorter chain is a
// prefix of the longer.
#include <chrono>
#include <thread>

#include "kafka/real_kafka.h"
#include "ledger/ledger_set.h"
#include "producers/keyfile.h"

using namespace g60;
using namespace g60::testing;
using namespace std::chrono_literals;

namespace {

constexpr int kTopicPartitions = 12;

// Entries of the longest chain of every partition across the ledgers, summed: how much
// of the topic the group holds. 0 while a ledger cannot be opened yet.
uint64_t HeldTogether(const std::vector<std::string>& dirs) {
  std::vector<std::unique_ptr<Ledger>> ledgers;
  std::vector<SetMember> members;
  for (const auto& d : dirs) {
    LedgerOptions o;
    o.dir = d;
    auto l = Ledger::Open(o);
    if (!l) continue;
    members.push_back({d, l->get()});
    ledgers.push_back(std::move(*l));
  }
  if (members.empty()) return 0;
  auto set = CheckLedgerSet(members);
  if (!set) return 0;
  uint64_t n = 0;
  for (const auto& ph : set->partitions)
    n += ph.holders[ph.longest].second.size;
  return n;
}

// Produces steps [from, to) of the stream, in order.
void ProduceSteps(Producer& producer, const std::vector<DemoStep>& steps, size_t from, size_t to,
                  uint64_t& messages) {
  const int partitions = *producer.PartitionCount();
  for (size_t i = from; i < to; ++i) {
    for (const auto& pe : steps[i].events)
      messages += SendEvent(producer, steps[i], pe, partitions);
    auto d = producer.Flush();
    REQUIRE(d.has_value());
    REQUIRE(d->failures.empty());
  }
}

}  // namespace

TEST_CASE("real Kafka: three ingest nodes share 12 partitions, one dies, the others take over",
          "[.realkafka][single]") {
  RealKafka k = Cluster();
  TestTopic topic(k, "scale-out", kTopicPartitions);
  auto producer = RealProducer(k, topic.name());
  DemoStreamOptions so;
  so.applicants = 600;
  so.seed = 31;
  so.catalog = TestCatalog();
  const auto steps = GenerateDemoStream(so, Keys());
  uint64_t messages = 0;
  TempDir dir;
  // A short session so the group notices the dead node in seconds, not 45.
  const std::string extra =
      "[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";
  std::vector<std::string> dirs, cfgs;
  for (int n = 0; n < 3; ++n) {
    auto node = dir / fmt::format("node{}", n);
    cfgs.push_back(WriteConfig(node, k, topic.name(), "scale-out", extra));
    dirs.push_back((std::filesystem::path(node) / "ledger").string());
  }
  std::vector<std::unique_ptr<Child>> nodes;
  for (int n = 0; n < 3; ++n) {
    nodes.push_back(std::make_unique<Child>(
        std::vector<std::string>{G60LEDGER_BIN, "ingest", "--config", cfgs[n]},
        dir / fmt::format("node{}.log", n)));
  }
  auto wait_held = [&](uint64_t want) {
    for (int i = 0; i < 600 && HeldTogether(dirs) < want; ++i)
      std::this_thread::sleep_for(100ms);
    return HeldTogether(dirs);
  };
  ProduceSteps(*producer, steps, 0, steps.size() / 2, messages);
  REQUIRE(wait_held(messages) == messages);
  // Every node holds partitions of its own before one dies. A node that joined the group
  // after the others had consumed everything gets its share at the next rebalance and
  // consumes it from offset 0 into its own ledger: wait for that.
  auto all_hold = [&] {
    for (const auto& d : dirs)
      if (EntriesIn(d) == 0) return false;
    return true;
  };
  for (int i = 0; i < 600 && !all_hold(); ++i)
    std::this_thread::sleep_for(100ms);
  REQUIRE(all_hold());
  REQUIRE(wait_held(messages) == messages);

  nodes[1]->Kill(SIGKILL);
  CHECK(nodes[1]->Wait() == 128 + SIGKILL);
  const uint64_t dead = EntriesIn(dirs[1]);  // taken once it can no longer change
  const uint64_t alive = EntriesIn(dirs[0]) + EntriesIn(dirs[2]);
  ProduceSteps(*producer, steps, steps.size() / 2, steps.size(), messages);
  CHECK(wait_held(messages) == messages);
  // The dead node's ledger stays as it was; the others took its partitions over and
  // consumed the new events.
  CHECK(EntriesIn(dirs[1]) == dead);
  CHECK(EntriesIn(dirs[0]) + EntriesIn(dirs[2]) > alive);
  for (int n : {0, 2}) {
    nodes[n]->Kill(SIGTERM);
    INFO(nodes[n]->Output());
    CHECK(nodes[n]->Wait() == 0);
  }

  REQUIRE(WriteKeyFile(dir / "admin", Keys().admin).has_value());
  auto checked =
      Run({G60LEDGER_BIN, "verify-set", "--anchor", dir / "admin.pub", dirs[0], dirs[1], dirs[2]},
          dir / "verify-set.log");
  INFO(checked.output);
  CHECK(checked.status == 0);
  CHECK_THAT(checked.output, Catch::Contains("hold all 12 partition(s)"));
  // The partitions the dead node held are now held by two ledgers each.
  CHECK_THAT(checked.output, Catch::Contains("longest"));
}
