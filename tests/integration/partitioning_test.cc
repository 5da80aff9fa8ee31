// One applicant, one chain (DESIGN.md): our producer places keys where Kafka's Java
// client does, the ledger rejects a record outside the partition its key maps to, and
// a ledger keeps the partition count of its topic for life. Over the development
// broker; tests/kafka/ repeats what needs real Kafka (partitions added to a live topic).
#include <librdkafka/rdkafkacpp.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "ledger/audit.h"
#include "ledger/bytes.h"
#include "ledger/partitioner.h"
#include "ledger/summary.h"

using namespace g60;
using namespace g60::testing;

namespace {

// A plain librdkafka producer that writes where it is told: what anyone with produce
// rights on the topic can do, no signing key needed.
void SendRaw(const std::string& bootstrap, const std::string& topic,
             const std::vector<std::tuple<int32_t, std::string, std::string>>& records) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  REQUIRE(conf->set("bootstrap.servers", bootstrap, err) == RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.get(), err));
  REQUIRE(p);
  for (const auto& [partition, key, value] : records) {
    REQUIRE(p->produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                       const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                       nullptr) == RdKafka::ERR_NO_ERROR);
  }
  REQUIRE(p->flush(20000) == RdKafka::ERR_NO_ERROR);
}

// (key, partition) of every record in the topic's `partitions` partitions.
std::map<std::string, int32_t> WhereEachKeyIs(const std::string& bootstrap,
                                              const std::string& topic, int partitions,
                                              size_t expected) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  REQUIRE(conf->set("bootstrap.servers", bootstrap, err) == RdKafka::Conf::CONF_OK);
  REQUIRE(conf->set("group.id", "where-" + topic, err) == RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  REQUIRE(c);
  std::vector<RdKafka::TopicPartition*> parts;
  for (int p = 0; p < partitions; ++p)
    parts.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  REQUIRE(c->assign(parts) == RdKafka::ERR_NO_ERROR);
  RdKafka::TopicPartition::destroy(parts);
  std::map<std::string, int32_t> out;
  for (int polls = 0; polls < 300 && out.size() < expected; ++polls) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() == RdKafka::ERR_NO_ERROR) out[m->key() ? *m->key() : ""] = m->partition();
  }
  c->close();
  return out;
}

struct Vector {
  std::string key;
  std::map<int, int32_t> partitions;  // partition count -> the Java client's partition
};

std::vector<Vector> Vectors() {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/vectors/kafka-murmur2-partitions.json");
  REQUIRE(in.good());
  std::vector<Vector> out;
  const auto doc = nlohmann::json::parse(in);  // kept alive: the loop reads into it
  for (const auto& c : doc.at("cases")) {
    Vector v{*HexDecode(c.at("key_hex").get<std::string>()), {}};
    for (const auto& [count, p] : c.at("partitions").items())
      v.partitions[std::stoi(count)] = p.get<int32_t>();
    out.push_back(std::move(v));
  }
  return out;
}

// Ingests everything the broker holds into `ledger`; the error if it stops on one.
Result<IngestStats> IngestAll(Ledger& ledger, const DevBroker& broker,
                              const std::string& group = "g60ledger-ingest") {
  IngestOptions io;
  io.bootstrap = broker.bootstrap();
  io.until_caught_up = true;
  io.group_id = group;
  std::atomic<bool> stop{false};
  return RunIngest(ledger, io, stop);
}

}  // namespace

TEST_CASE("the producer puts every key in the partition Kafka's Java client chooses",
          "[integration][kafka][partitioner]") {
  BrokerOptions bo;
  bo.topics = {{"p8", 8}, {"p12", 12}};
  auto broker = DevBroker::Start(bo);
  REQUIRE(broker.has_value());
  auto vectors = Vectors();
  for (int count : {8, 12}) {
    ProducerOptions po;
    po.bootstrap = (*broker)->bootstrap();
    po.topic = "p" + std::to_string(count);
    auto producer = Producer::Create(po);
    REQUIRE(producer.has_value());
    for (const auto& v : vectors)
      REQUIRE((*producer)->Send(v.key, "value", v.key).has_value());
    auto delivered = (*producer)->Flush();
    REQUIRE(delivered.has_value());
    REQUIRE(delivered->failures.empty());
    auto where = WhereEachKeyIs((*broker)->bootstrap(), po.topic, count, vectors.size());
    REQUIRE(where.size() == vectors.size());
    for (const auto& v : vectors) {
      INFO("key " << HexEncode(v.key) << ", " << count << " partitions");
      CHECK(where.at(v.key) == v.partitions.at(count));
    }
  }
}

TEST_CASE("a genuine record copied to another partition is recorded, rejected, never counted",
          "[integration][kafka][partitioner]") {
  auto broker = StartBroker();
  auto producer = MakeProducer(broker->bootstrap());
  const auto& k = Keys();
  for (const auto& r : GrantRecords(0))
    REQUIRE(producer->SendToAll(r.value, "control").has_value());
  const std::string applicant = "91310117026AC2FW7P";
  const auto home = static_cast<int32_t>(KafkaPartitionForKey(applicant, kPartitions));
  const int32_t elsewhere = (home + 3) % kPartitions;
  std::vector<std::string> genuine = {
      SignEvent(ApplicationEvent("app-1", applicant, 10000, 500), k.portal),
      SignEvent(ApprovalEvent("apr-1", applicant, "app-1", {200, 300}), k.district),
      SignEvent(PaymentEvent("pay-1", applicant, "apr-1", 1, 200), k.treasury)};
  for (const auto& v : genuine)
    REQUIRE(producer->Send(applicant, v, "genuine").has_value());
  REQUIRE(producer->Flush()->failures.empty());
  // The attacker: the same bytes and the same key, in another partition.
  std::vector<std::tuple<int32_t, std::string, std::string>> copies;
  for (const auto& v : genuine)
    copies.emplace_back(elsewhere, applicant, v);
  SendRaw(broker->bootstrap(), "g60.events", copies);

  TempDir dir;
  auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, kPartitions);
  REQUIRE(IngestAll(*ledger, *broker, "copies").has_value());

  Census c = ReadAll(*ledger);
  for (const char* id : {"app-1", "apr-1", "pay-1"}) {
    INFO(id);
    CHECK(c.seen[id] == std::deque<Reason>{Reason::REASON_NONE, Reason::REASON_WRONG_PARTITION});
  }
  auto summary = Summarize(*ledger);
  REQUIRE(summary.has_value());
  CHECK(summary->total.paid_fen == 200);  // not 400
  CHECK(summary->total.approved_fen == 500);
  CHECK(summary->rejected_by_reason["WRONG_PARTITION"] == 3);
  // The rejection names where the applicant belongs.
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  auto head = ledger->Head(static_cast<uint32_t>(elsewhere));
  auto last = txn->Get(ledger->tables().entries,
                       EntryKey(static_cast<uint32_t>(elsewhere), (*head)->size - 1));
  CHECK_THAT(DecodeEntry(**last)->body.detail(),
             Catch::Contains(fmt::format("belongs in partition {} of 8", home)));
  txn->Abort();
  RequireVerified(*ledger);
  // The audit decides every record again, with the recorded partition count, and agrees.
  TempDir scratch;
  AuditOptions ao;
  ao.trust_anchors = {k.admin.public_key};
  ao.scratch_dir = scratch.path() + "/replay";
  auto report = AuditLedger(*ledger, ao);
  REQUIRE(report.has_value());
  INFO((report->first_discrepancy ? report->first_discrepancy->ToString() : ""));
  CHECK(report->ok());
}

TEST_CASE("a ledger keeps its topic's partition count for life", "[integration][kafka]") {
  TempDir dir;
  {
    auto broker = StartBroker(8);
    auto producer = MakeProducer(broker->bootstrap());
    for (const auto& r : GrantRecords(0))
      REQUIRE(producer->SendToAll(r.value, "control").has_value());
    REQUIRE(producer->Flush()->failures.empty());
    LedgerOptions o;
    o.dir = dir.path();
    o.writer = true;
    o.trust_anchors = {Keys().admin.public_key};
    auto ledger = Ledger::Open(o);  // a new ledger: ingest records the topic's count
    REQUIRE(ledger.has_value());
    CHECK((*ledger)->partition_count() == 0);
    REQUIRE(IngestAll(**ledger, *broker).has_value());
    CHECK((*ledger)->partition_count() == 8);
  }
  SECTION("a topic with more partitions is refused before anything is consumed") {
    auto broker = StartBroker(12);
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 8);
    auto before = ledger->Heads();
    auto r = IngestAll(*ledger, *broker);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(r.error().message(), Catch::Contains("has 12 partitions") &&
                                        Catch::Contains("was created for 8") &&
                                        Catch::Contains("split applicants' histories"));
    CHECK(ledger->Heads()->size() == before->size());
  }
  SECTION("opening it for another count is refused too") {
    LedgerOptions o;
    o.dir = dir.path();
    o.writer = true;
    o.trust_anchors = {Keys().admin.public_key};
    o.partition_count = 16;
    auto l = Ledger::Open(o);
    REQUIRE_FALSE(l.has_value());
    CHECK_THAT(l.error().message(), Catch::Contains("created for 8"));
  }
  SECTION("another topic with as many records or more: its records are not the ledger's") {
    auto broker = StartBroker(8);  // a development broker restarted, then written to again
    std::vector<std::tuple<int32_t, std::string, std::string>> junk;
    for (int32_t p = 0; p < 8; ++p) {
      for (int i = 0; i < 70; ++i)
        junk.emplace_back(p, "91310117JUNK000000", fmt::format("junk {}", i));
    }
    SendRaw(broker->bootstrap(), "g60.events", junk);
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 8);
    auto before = ledger->Heads();
    auto r = IngestAll(*ledger, *broker);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(r.error().message(), Catch::Contains("up to offset 4, but the topic's record at "
                                                    "offset 4 is not the one its entry 4 holds") &&
                                        Catch::Contains("not the topic the ledger was built from"));
    auto after = ledger->Heads();
    for (size_t i = 0; i < before->size(); ++i)
      CHECK((*after)[i].size == (*before)[i].size);
  }
  SECTION("a topic of another name is refused") {
    BrokerOptions bo;
    bo.topics = {{"g60.other", 8}};
    auto broker = DevBroker::Start(bo);
    REQUIRE(broker.has_value());
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 8);
    IngestOptions io;
    io.bootstrap = (*broker)->bootstrap();
    io.topic = "g60.other";
    io.until_caught_up = true;
    std::atomic<bool> stop{false};
    auto r = RunIngest(*ledger, io, stop);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(r.error().message(),
               Catch::Contains("was built from Kafka topic \"g60.events\", not \"g60.other\""));
  }
  SECTION("a topic that is not the one the ledger consumed: the ledger is ahead of it") {
    auto broker = StartBroker(8);  // a development broker restarted: empty
    auto ledger = OpenTestLedger(dir.path(), size_t{64} << 20, 8);
    auto r = IngestAll(*ledger, *broker);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kFailedPrecondition);
    CHECK_THAT(r.error().message(), Catch::Contains("up to offset 4") &&
                                        Catch::Contains("now ends at offset 0") &&
                                        Catch::Contains("not the topic the ledger was built from"));
  }
}
