// What only a real Kafka broker can show about the topic a ledger consumes: Kafka
// transactions (all or nothing), records really deleted by retention, a topic deleted
// and created again, and partitions added to a live topic.
#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <future>
#include <thread>

#include "kafka/real_kafka.h"
#include "producers/keyfile.h"
#include "producers/ndjson.h"

using namespace g60;
using namespace g60::testing;
using namespace std::chrono_literals;

namespace {

std::string ApplicationLine(const std::string& id, const std::string& applicant) {
  return ToJsonLine(ApplicationEvent(id, applicant, 1000000, 1000)) + "\n";
}

// The low and high watermarks of a partition.
std::pair<int64_t, int64_t> Watermarks(const RealKafka& k, const std::string& topic, int p) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  REQUIRE(conf->set("bootstrap.servers", k.bootstrap, err) == RdKafka::Conf::CONF_OK);
  REQUIRE(conf->set("group.id", "watermarks", err) == RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  int64_t low = -1, high = -1;
  REQUIRE(c->query_watermark_offsets(topic, p, &low, &high, 10000) == RdKafka::ERR_NO_ERROR);
  c->close();
  return {low, high};
}

}  // namespace

TEST_CASE("real Kafka: a transaction is ingested whole or not at all", "[.realkafka][single]") {
  RealKafka k = Cluster();
  TestTopic topic(k, "transactions", 4);
  TempDir dir;
  std::string cfg = WriteConfig(dir.path(), k, topic.name(), "transactions");
  ProduceControl(*RealProducer(k, topic.name()));
  REQUIRE(WriteKeyFile(dir / "portal.key", Keys().portal).has_value());

  // A finance batch file, committed: produce --transactional-id.
  {
    std::ofstream f(dir / "good.ndjson");
    for (int i = 0; i < 6; ++i)
      f << ApplicationLine(fmt::format("tx-good-{}", i), fmt::format("91310117TXGOOD{:04d}", i));
  }
  auto good = Run({G60LEDGER_BIN, "produce", "--config", cfg, "--key", dir / "portal.key",
                   "--transactional-id", "g60-test-good", dir / "good.ndjson"},
                  dir / "good.log");
  INFO(good.output);
  REQUIRE(good.status == 0);
  CHECK_THAT(good.output, Catch::Contains("transaction g60-test-good committed"));

  // A batch with a bad third line: the two lines before it were already sent, and are
  // aborted with the rest.
  {
    std::ofstream f(dir / "bad.ndjson");
    f << ApplicationLine("tx-bad-0", "91310117TXBAD00000")
      << ApplicationLine("tx-bad-1", "91310117TXBAD00001")
      << "{\"eventId\": \"tx-bad-2\", \"application\": \n"
      << ApplicationLine("tx-bad-3", "91310117TXBAD00003");
  }
  auto bad = Run({G60LEDGER_BIN, "produce", "--config", cfg, "--key", dir / "portal.key",
                  "--transactional-id", "g60-test-bad", dir / "bad.ndjson"},
                 dir / "bad.log");
  INFO(bad.output);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("transaction g60-test-bad aborted, nothing will be "
                                         "ingested") &&
                             Catch::Contains("bad.ndjson:3"));

  // The library's own abort, after messages were delivered to the broker.
  {
    ProducerOptions po;
    po.bootstrap = k.bootstrap;
    po.topic = topic.name();
    po.transactional_id = "g60-test-abort";
    auto p = Producer::Create(po);
    INFO((p ? "" : p.error().ToString()));
    REQUIRE(p.has_value());
    REQUIRE((*p)->BeginTransaction().has_value());
    for (int i = 0; i < 5; ++i) {
      std::string applicant = fmt::format("91310117TXABORT{:03d}", i);
      REQUIRE((*p)->Send(applicant,
                         SignEvent(ApplicationEvent(fmt::format("tx-abort-{}", i), applicant,
                                                    1000000, 1000),
                                   Keys().portal),
                         "abort")
                  .has_value());
    }
    auto delivered = (*p)->Flush();
    REQUIRE(delivered.has_value());
    CHECK(delivered->delivered == 5);  // on the broker, in the log, not yet committed
    REQUIRE((*p)->AbortTransaction().has_value());
  }
  // A record after the aborted ones in every partition: the ingest must step over them.
  {
    auto after = RealProducer(k, topic.name());
    REQUIRE(
        after->SendToAll(SignEvent(CatalogEvent("catalog-2"), Keys().admin), "after").has_value());
    REQUIRE(after->Flush()->failures.empty());
  }

  auto ledger = OpenTestLedger(dir / "ledger", size_t{64} << 20, 4);
  std::atomic<bool> stop{false};
  auto stats = RunIngest(*ledger, RealIngest(k, topic.name(), "transactions"), stop);
  INFO((stats ? "" : stats.error().ToString()));
  REQUIRE(stats.has_value());
  Census c = ReadAll(*ledger);
  for (int i = 0; i < 6; ++i)
    CHECK(c.seen[fmt::format("tx-good-{}", i)] == std::deque<Reason>{Reason::REASON_NONE});
  for (const auto& [id, reasons] : c.seen) {
    INFO(id);
    CHECK(id.rfind("tx-bad", 0) != 0);
    CHECK(id.rfind("tx-abort", 0) != 0);
  }
  CHECK(c.entries == 5 * 4 + 6 + 4);
  CHECK(c.seen["catalog-2"].size() == 4);
  // The aborted records and the transaction markers hold offsets but are no entries.
  int64_t next = 0;
  uint64_t size = 0;
  auto heads = ledger->Heads();
  REQUIRE(heads.has_value());
  for (const auto& h : *heads) {
    next += h.next_offset;
    size += h.size;
  }
  CHECK(next > static_cast<int64_t>(size));
  RequireVerified(*ledger);
  // Consumed again from the stored offsets: nothing new, nothing twice.
  auto again = RunIngest(*ledger, RealIngest(k, topic.name(), "transactions"), stop);
  REQUIRE(again.has_value());
  CHECK(again->appended == 0);
}

TEST_CASE("real Kafka: records deleted by retention stop a new ledger, naming the offsets",
          "[.realkafka][single]") {
  RealKafka k = Cluster();
  // Segments of 1 MiB, of which retention keeps about one: the oldest go within seconds
  // (the brokers check retention every second, ops/kafka).
  TestTopic topic(k, "retention", 1,
                  {{"segment.bytes", "1048576"}, {"retention.bytes", "1048576"}});
  auto producer = RealProducer(k, topic.name());
  std::string big(100 * 1024, 'x');
  for (int i = 0; i < 40; ++i)
    REQUIRE(producer->Send("91310117FILLER0000", big, "filler").has_value());
  REQUIRE(producer->Flush()->failures.empty());
  int64_t low = 0;
  for (int i = 0; i < 120 && low == 0; ++i) {
    std::this_thread::sleep_for(500ms);
    low = Watermarks(k, topic.name(), 0).first;
  }
  INFO("the broker never deleted a segment");
  REQUIRE(low > 0);

  TempDir dir;
  auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 1);
  std::atomic<bool> stop{false};
  auto r = RunIngest(*ledger, RealIngest(k, topic.name(), "retention"), stop);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ErrorCode::kDataLoss);
  CHECK_THAT(r.error().message(),
             Catch::Contains(fmt::format("no longer has offsets 0..{} of {} partition 0", low - 1,
                                         topic.name())) &&
                 Catch::Contains("deleted by retention"));
  CHECK(ledger->Heads()->empty());
}

TEST_CASE("real Kafka: a topic deleted and created again is not the ledger's topic",
          "[.realkafka][single]") {
  RealKafka k = Cluster();
  TempDir dir;
  std::string name;
  {
    TestTopic topic(k, "recreated", 2);
    name = topic.name();
    ProduceControl(*RealProducer(k, name));
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 2);
    std::atomic<bool> stop{false};
    REQUIRE(RunIngest(*ledger, RealIngest(k, name, "recreated"), stop).has_value());
  }  // deleted
  REQUIRE(CreateTopic(Admin(k), name, 2, k.brokers).has_value());
  auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 2);
  std::atomic<bool> stop{false};
  auto r = RunIngest(*ledger, RealIngest(k, name, "recreated"), stop);
  (void)DeleteTopic(Admin(k), name);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
  CHECK_THAT(r.error().message(), Catch::Contains("up to offset 4") &&
                                      Catch::Contains("now ends at offset 0") &&
                                      Catch::Contains("not the topic the ledger was built from"));
}

TEST_CASE("real Kafka: partitions added to a live topic stop the ingest before a split",
          "[.realkafka][single]") {
  RealKafka k = Cluster();
  // In a consumer group the rebalance that assigns the new partitions stops it; with
  // --assign-all only its periodic check of the partition count (every 10 s) can.
  for (bool assign_all : {false, true}) {
    INFO((assign_all ? "assign-all" : "consumer group"));
    TestTopic topic(k, "grown", 4);
    ProduceControl(*RealProducer(k, topic.name()));
    TempDir dir;
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 4);
    IngestOptions io = RealIngest(k, topic.name(), "grown");
    io.until_caught_up = false;  // a live ingest
    io.assign_all = assign_all;
    io.kafka["topic.metadata.refresh.interval.ms"] = "1000";
    std::atomic<bool> stop{false};
    auto running = std::async(std::launch::async, [&] { return RunIngest(*ledger, io, stop); });
    // Wait until it has consumed the control events, then grow the topic.
    for (int i = 0; i < 300 && ledger->Heads()->size() < 4; ++i)
      std::this_thread::sleep_for(100ms);
    REQUIRE(ledger->Heads()->size() == 4);
    REQUIRE(AddPartitions(Admin(k), topic.name(), 6).has_value());
    auto ready = running.wait_for(60s);
    stop = true;
    REQUIRE(ready == std::future_status::ready);
    auto r = running.get();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
    INFO(r.error().message());
    CHECK_THAT(r.error().message(), Catch::Contains("created for") && Catch::Contains("4") &&
                                        Catch::Contains("The partition count is fixed"));
    // Nothing was decided under the new count, and nothing consumed was lost.
    auto heads = ledger->Heads();
    REQUIRE(heads.has_value());
    CHECK(heads->size() == 4);
    for (const auto& h : *heads) {
      CHECK(h.partition < 4);
      CHECK(h.size == 5);
      CHECK(h.next_offset == 5);
    }
  }
}
