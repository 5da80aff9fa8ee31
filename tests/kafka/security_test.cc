// A secured real Kafka cluster (ops/kafka start --security sasl-ssl): TLS on the client
// listener, SASL users and ACLs. The ingest user may read g60.events and write
// g60.checkpoints; the producer user may only write g60.events. The settings are passed
// through [kafka.consumer] and [kafka.producer] exactly as ops/config/ledger.example.toml
// documents them, and every refusal says what to fix.
//
// The SASL mechanism is the one ops/kafka writes into USER.properties for this machine's
// librdkafka: SCRAM-SHA-512 from librdkafka 2.6.1 on, SASL/PLAIN (over the same TLS)
// before it, because Kafka 4.x refuses the SCRAM final message of older librdkafka
// (librdkafka issue 4895; docs/kafka.md). Debian 12 ships 2.0.2.
#include "kafka/real_kafka.h"
#include "ledger/checkpoint.h"
#include "producers/keyfile.h"
#include "producers/ndjson.h"

using namespace g60;
using namespace g60::testing;

namespace {

std::string SecureConfig(const std::filesystem::path& dir, const RealKafka& k,
                         const std::map<std::string, std::string>& props,
                         const std::string& extra = "") {
  return WriteConfig(dir, k, "g60.events", "g60ledger-secure",
                     PropertiesSection("kafka.consumer", props) +
                         PropertiesSection("kafka.producer", props) + extra);
}

// `g60ledger ingest --until-caught-up` with the settings in `props`, in a directory of
// its own; returns its exit status and output.
RunResult IngestWith(const RealKafka& k, const std::map<std::string, std::string>& props,
                     const TempDir& dir) {
  auto cfg = SecureConfig(dir.path(), k, props);
  auto r = Run({G60LEDGER_BIN, "ingest", "--config", cfg, "--until-caught-up"}, dir / "ingest.log");
  return r;
}

}  // namespace

TEST_CASE("real Kafka with TLS, SASL/SCRAM and ACLs: each principal does its job and no more",
          "[.realkafka][secure]") {
  RealKafka k = Cluster();
  REQUIRE_FALSE(k.clients_dir.empty());
  KafkaAdminOptions admin = Admin(k);
  for (auto [topic, partitions] : {std::pair{"g60.events", 4}, std::pair{"g60.checkpoints", 1}}) {
    auto created = CreateTopic(admin, topic, partitions, k.brokers);
    INFO((created ? "" : created.error().ToString()));
    REQUIRE(created.has_value());
  }
  auto ingest_props = ClientProperties(k, "ingest");
  auto producer_props = ClientProperties(k, "producer");
  REQUIRE(ingest_props.at("security.protocol") == "SASL_SSL");

  // The producer principal writes the events (idempotent, acks=all).
  auto producer = RealProducer(k, "g60.events", "producer");
  ProduceControl(*producer);
  for (int i = 0; i < 20; ++i) {
    std::string applicant = fmt::format("91310117SECURE{:04d}", i);
    REQUIRE(
        producer
            ->Send(applicant,
                   SignEvent(ApplicationEvent(fmt::format("sec-{}", i), applicant, 1000000, 1000),
                             Keys().portal),
                   "secure")
            .has_value());
  }
  REQUIRE(producer->Flush()->failures.empty());
  const uint64_t messages = 5 * 4 + 20;

  {  // the ingest principal consumes and publishes checkpoints
    TempDir dir;
    auto ledger = OpenTestLedger(dir / "ledger", size_t{64} << 20, 4);
    Checkpointer cp(TestLedgerKey(), 10, std::chrono::seconds(3600));
    IngestOptions io = RealIngest(k, "g60.events", "g60ledger-secure");
    io.producer_kafka = ingest_props;
    io.checkpointer = &cp;
    io.checkpoint_topic = "g60.checkpoints";
    std::atomic<bool> stop{false};
    auto stats = RunIngest(*ledger, io, stop);
    INFO((stats ? "" : stats.error().ToString()));
    REQUIRE(stats.has_value());
    CHECK(stats->appended == messages);
    CHECK(stats->accepted == messages);
    CHECK(stats->checkpoints > 0);
    CHECK(stats->checkpoints_published == stats->checkpoints);
  }
  {  // the documented configuration works from the command line
    TempDir dir;
    auto r = IngestWith(k, ingest_props, dir);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(EntriesIn(dir / "ledger") == messages);
  }
  {  // the producer principal may not consume: a clear refusal, exit 3
    TempDir dir;
    auto r = IngestWith(k, producer_props, dir);
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("PERMISSION_DENIED") &&
                             Catch::Contains("the Kafka cluster refused ingest"));
    CHECK(EntriesIn(dir / "ledger") == 0);
  }
  {  // a wrong password: refused credentials, named, exit 3
    TempDir dir;
    auto props = ingest_props;
    props["sasl.password"] = "not-the-password";
    auto r = IngestWith(k, props, dir);
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("refused our credentials (sasl.username ingest"));
  }
  {  // no TLS towards a TLS listener: the operator hears why
    TempDir dir;
    auto props = ingest_props;
    props["security.protocol"] = "SASL_PLAINTEXT";
    auto r = IngestWith(k, props, dir);
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Catch::Contains("security.protocol SASL_PLAINTEXT does not match"));
  }
  {  // the ingest principal may not write events
    TempDir dir;
    REQUIRE(WriteKeyFile((dir / "portal.key"), Keys().portal).has_value());
    std::ofstream(dir / "one.ndjson")
        << ToJsonLine(ApplicationEvent("sec-x", "91310117SECUREX000", 1000000, 1000)) << "\n";
    auto cfg = SecureConfig(dir.path(), k, ingest_props);
    auto r = Run({G60LEDGER_BIN, "produce", "--config", cfg, "--key", dir / "portal.key",
                  dir / "one.ndjson"},
                 dir / "produce.log");
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Catch::Contains("uthorization"));
  }
  (void)DeleteTopic(admin, "g60.events");
  (void)DeleteTopic(admin, "g60.checkpoints");
}
