// End to end through a real Kafka protocol: the development broker (librdkafka's mock
// cluster) in this process, the real producer, the real ingest, then verify.
#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <thread>

#include "consumers/ingest.h"
#include "integration/harness.h"
#include "ledger/entry.h"
#include "ledger/verify.h"
#include "ops/broker.h"
#include "process.h"
#include "producers/ndjson.h"
#include "producers/producer.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

TEST_CASE("10,000+ signed events through Kafka: one entry each, verdicts as planned, verified",
          "[integration][kafka]") {
  auto broker = StartBroker();
  auto producer = MakeProducer(broker->bootstrap());
  DemoStreamOptions so;
  so.applicants = 2600;
  so.seed = 11;
  so.catalog = TestCatalog();
  auto steps = GenerateDemoStream(so, Keys());
  Expectations expect;
  uint64_t messages = ProduceStream(*producer, steps, expect);

  // Bad values from a client that does not sign: truncated, random, empty.
  std::string good =
      SignEvent(ApplicationEvent("app-t", "91310117TRUNCATED0", 1, 1), Keys().portal);
  std::vector<std::string> bad = {good.substr(0, good.size() - 7),
                                  std::string("\x8f\x13\xfe\x00\x42", 5), ""};
  for (size_t i = 0; i < bad.size(); ++i) {
    REQUIRE(producer->Send("91310117TRUNCATED0", bad[i], "bad").has_value());
  }
  // A signed event whose Kafka key is not its applicant.
  std::string misrouted =
      SignEvent(ApplicationEvent("app-misrouted", "91310117REALAPPL00", 1, 1), Keys().portal);
  REQUIRE(producer->Send("91310117SOMEONEELS", misrouted, "misrouted").has_value());
  REQUIRE(producer->Flush()->failures.empty());
  messages += bad.size() + 1;
  REQUIRE(messages >= 10000);

  TempDir dir;
  {
    auto ledger = OpenTestLedger(dir.path(), size_t{512} << 20, kPartitions);
    IngestOptions io;
    io.bootstrap = broker->bootstrap();
    io.until_caught_up = true;
    io.group_id = "it-10k";
    std::atomic<bool> stop{false};
    auto stats = RunIngest(*ledger, io, stop);
    REQUIRE(stats.has_value());
    CHECK(stats->consumed == messages);
    CHECK(stats->appended == messages);
    CHECK(stats->skipped == 0);
  }
  auto ledger = OpenReader(dir.path());
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);

  Census c = ReadAll(*ledger);
  CHECK(c.entries == messages);
  CHECK(c.by_reason[Reason::REASON_MALFORMED_MESSAGE] == 3);
  CHECK(c.seen["app-misrouted"] == std::deque<Reason>{Reason::REASON_KAFKA_KEY_MISMATCH});
  uint64_t compared = 0;
  for (const auto& [id, reasons] : expect) {
    INFO("event " << id);
    CHECK(c.seen[id] == reasons);
    compared += reasons.size();
  }
  CHECK(compared == messages - 4);
  // Every kind of event and every planned rejection occurred.
  for (Reason r : {Reason::REASON_NONE,
                   Reason::REASON_BAD_SIGNATURE,
                   Reason::REASON_UNKNOWN_KEY,
                   Reason::REASON_KEY_REVOKED,
                   Reason::REASON_ROLE_NOT_ALLOWED,
                   Reason::REASON_DUPLICATE_EVENT,
                   Reason::REASON_EXCEEDS_APPROVAL,
                   Reason::REASON_EXCEEDS_PAID,
                   Reason::REASON_NO_APPROVAL,
                   Reason::REASON_EXCEEDS_REQUESTED,
                   Reason::REASON_EXCEEDS_CAP,
                   Reason::REASON_WRONG_REWARD,
                   Reason::REASON_ALREADY_REWARDED,
                   Reason::REASON_YEARLY_CAP,
                   Reason::REASON_WINDOW_CAP,
                   Reason::REASON_DUPLICATE_SUPPORT,
                   Reason::REASON_CARRY_MISMATCH,
                   Reason::REASON_SUPERSEDED,
                   Reason::REASON_CO_FUNDING_CAP,
                   Reason::REASON_OUTSIDE_VALIDITY,
                   Reason::REASON_UNKNOWN_PROGRAMME,
                   Reason::REASON_LEVEL_NOT_PROGRAMME,
                   Reason::REASON_NOT_STAGED}) {
    INFO(ReasonName(r));
    CHECK(c.by_reason[r] > 0);
  }
}

TEST_CASE("SIGKILL of the ingest mid-stream: still one entry per message, identical to a clean run",
          "[integration][kafka][restart]") {
  auto broker = StartBroker();
  TempDir dir;
  // The admin's public key file for the child's --anchor.
  KeyFile admin_pub = Keys().admin;
  admin_pub.secret_key = std::string(64, '\0');
  REQUIRE(WriteKeyFile(dir / "admin.key", admin_pub).has_value());
  {
    std::ofstream cfg(dir / "ingest.toml");
    cfg << "[kafka]\nbootstrap = \"" << broker->bootstrap() << "\"\ngroup_id = \"it-restart\"\n"
        << "[kafka.consumer]\n\"session.timeout.ms\" = \"6000\"\n"
        << "[ingest]\nbatch_max_messages = 200\nbatch_max_ms = 20\n";
  }
  DemoStreamOptions so;
  so.applicants = 1200;
  so.seed = 12;
  so.catalog = TestCatalog();
  auto steps = GenerateDemoStream(so, Keys());

  // Produce in the background while the ingest is killed and restarted.
  std::atomic<uint64_t> messages{0};
  std::atomic<bool> produced{false};
  std::thread feeder([&] {
    auto producer = MakeProducer(broker->bootstrap());
    Expectations unused;
    messages = ProduceStream(*producer, steps, unused);
    produced = true;
  });
  std::vector<std::string> args = {
      G60LEDGER_BIN, "ingest",       "--config", dir / "ingest.toml",
      "--ledger",    dir / "ledger", "--anchor", dir / "admin.key.pub"};
  int kills = 0;
  auto entries = [&] { return EntriesIn(dir / "ledger"); };
  uint64_t last = 0;
  while (kills < 3) {
    Child ingest(args, dir / "ingest.log");
    // Kill once the ledger has grown since the last kill (it is mid-stream).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (entries() <= last + 100 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ingest.Kill(SIGKILL);
    CHECK(ingest.Wait() == 128 + SIGKILL);
    last = entries();
    ++kills;
  }
  feeder.join();
  REQUIRE(produced);
  auto final_run = Run({G60LEDGER_BIN, "ingest", "--config", dir / "ingest.toml", "--ledger",
                        dir / "ledger", "--anchor", dir / "admin.key.pub", "--until-caught-up"},
                       dir / "final.log");
  INFO(final_run.output);
  REQUIRE(final_run.status == 0);

  auto ledger = OpenReader(dir / "ledger");
  RequireOneEntryPerMessage(*ledger, messages);
  RequireVerified(*ledger);
  // The verbs an operator runs on it.
  auto verified =
      Run({G60LEDGER_BIN, "verify", "--ledger", dir / "ledger", "--anchor", dir / "admin.key.pub"},
          dir / "verify.log");
  CHECK(verified.status == 0);
  CHECK_THAT(verified.output,
             Catch::StartsWith("verify: OK: " + std::to_string(messages) + " entries"));
  auto heads = Run({G60LEDGER_BIN, "heads", "--ledger", dir / "ledger"}, dir / "heads.log");
  CHECK(heads.status == 0);
  CHECK_THAT(heads.output, Catch::Contains("partition 7 size") && Catch::Contains("merkle_root"));

  // A replica that never crashed reaches the very same chains.
  TempDir clean;
  {
    auto replica = OpenTestLedger(clean.path(), size_t{256} << 20, kPartitions);
    IngestOptions io;
    io.bootstrap = broker->bootstrap();
    io.until_caught_up = true;
    io.group_id = "it-restart-replica";
    std::atomic<bool> stop{false};
    REQUIRE(RunIngest(*replica, io, stop).has_value());
  }
  auto replica = OpenReader(clean.path());
  auto a = ledger->Heads();
  auto b = replica->Heads();
  REQUIRE(a->size() == b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    CHECK((*a)[i].size == (*b)[i].size);
    CHECK((*a)[i].head_hash == (*b)[i].head_hash);
  }
}

TEST_CASE("produce refuses what a reviewer could read two ways or the ledger will reject",
          "[integration][kafka][cli]") {
  auto broker = StartBroker();
  TempDir dir;
  REQUIRE(WriteKeyFile(dir / "district.key", Keys().district).has_value());
  REQUIRE(WriteKeyFile(dir / "portal.key", Keys().portal).has_value());
  const std::string head =
      R"({"eventId":"EID","applicantId":"91310117MA1J000001","programme":"G60-07b",)"
      R"("projectId":"p1","occurredAtMs":"1767225600000",)";
  auto line = [&](const std::string& id, const std::string& rest) {
    std::string h = head;
    h.replace(h.find("EID"), 3, id);
    return h + rest + "\n";
  };
  {
    std::ofstream in(dir / "events.ndjson");
    in << line("apr-1", R"("approval":{"applicationEventId":"app-1","approvedFen":"300",)"
                        R"("level":"LEVEL_DISTRICT","stages":[{"number":1,"amountFen":"300"}]}})")
       // The issue's example: two values for one field, signed as the last before.
       << line("app-2", R"("application":{"declaredBaseFen":"2000000000","requestedFen":"100",)"
                        R"("requestedFen":"99999999"}})")
       // No payload: the ledger would reject it as MALFORMED_EVENT.
       << R"({"eventId":"apr-3","applicantId":"91310117MA1J000001","occurredAtMs":"1"})"
       << "\n"
       // A payment, which only a treasury key signs, with a district approver's key only.
       << line("pay-1", R"("stagePayment":{"approvalEventId":"apr-1","stage":1,)"
                        R"("amountFen":"100","source":"FUNDING_SOURCE_DISTRICT_FISCAL"}})");
  }
  auto r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key",
                dir / "district.key", dir / "events.ndjson"},
               dir / "produce.log");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("4 line(s) read, 1 event(s) sent"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:2:") &&
                           Catch::Contains("\"requestedFen\" is given more than once"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:3: event apr-3: the ledger would reject "
                                       "it as MALFORMED_EVENT"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:4: event pay-1: this stage-payment event "
                                       "needs a key with the role treasury") &&
                           Catch::Contains("has the role district-approver"));

  // --send-rejected puts what the ledger will reject on the record, but never signs a
  // line that can be read two ways.
  r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key",
           dir / "district.key", "--send-rejected", dir / "events.ndjson"},
          dir / "produce-rejected.log");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("4 line(s) read, 3 event(s) sent, 3 message(s) delivered, "
                                       "1 bad line(s)"));

  // The public half of a key where the secret is needed: named as such, with the file to
  // use instead (not "chmod 600 it").
  r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key",
           dir / "portal.key.pub", dir / "events.ndjson"},
          dir / "produce-pub.log");
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("portal.key.pub is a public key file") &&
                           Catch::Contains("sign with its secret key file (") &&
                           !Catch::Contains("chmod"));
}

TEST_CASE("produce names every bad NDJSON line and still sends the good ones",
          "[integration][kafka][cli]") {
  auto broker = StartBroker();
  TempDir dir;
  KeyFile portal = Keys().portal;
  REQUIRE(WriteKeyFile(dir / "portal.key", portal).has_value());
  {
    std::ofstream in(dir / "events.ndjson");
    in << R"({"eventId":"app-1","applicantId":"91310117MA1J000001","programme":"G60-07b","projectId":"p1","occurredAtMs":"1767225600000","application":{"declaredBaseFen":"1000","requestedFen":"300"}})"
       << "\n"
       << "{not json\n"
       << R"({"eventId":"app-2","applicantId":"91310117MA1J000001","colour":"blue"})"
       << "\n"
       << "\n"
       << R"({"eventId":"app-3","programme":"G60-07b","application":{"requestedFen":"5"}})"
       << "\n";
  }
  auto r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key",
                dir / "portal.key", dir / "events.ndjson"},
               dir / "produce.log");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(
      r.output,
      Catch::Contains("4 line(s) read, 1 event(s) sent, 1 message(s) delivered, 3 bad line(s)"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:2: the line is not strict JSON"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:3:") && Catch::Contains("colour"));
  CHECK_THAT(r.output, Catch::Contains("events.ndjson:5: event app-3 has no applicant_id"));

  // Control events (here a catalogue publication) go to every partition.
  KeyFile admin = Keys().admin;
  REQUIRE(WriteKeyFile(dir / "admin.key", admin).has_value());
  {
    std::ofstream in(dir / "catalog.ndjson");
    in << ToJsonLine(CatalogEvent("catalog-cli")) << "\n";
  }
  r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key", dir / "admin.key",
           dir / "catalog.ndjson"},
          dir / "produce-catalog.log");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("1 line(s) read, 1 event(s) sent, 8 message(s) delivered"));

  // A signing key that others can read is refused before anything is sent.
  std::filesystem::permissions(dir / "portal.key", std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  r = Run({G60LEDGER_BIN, "produce", "--bootstrap", broker->bootstrap(), "--key",
           dir / "portal.key", dir / "events.ndjson"},
          dir / "produce2.log");
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("readable by others"));
}
