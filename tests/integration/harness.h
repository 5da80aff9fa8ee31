// Shared by the integration tests: a development broker in the test process, producing
// the demo stream, and checks on a finished ledger.
#pragma once

#include <catch2/catch.hpp>

#include <deque>
#include <map>

#include "consumers/ingest.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/verify.h"
#include "ops/broker.h"
#include "producers/producer.h"
#include "support.h"

namespace g60::testing {

inline constexpr int kPartitions = 8;

inline std::unique_ptr<DevBroker> StartBroker(int partitions = kPartitions) {
  BrokerOptions o;
  o.topics = {{"g60.events", partitions}};
  auto b = DevBroker::Start(o);
  REQUIRE(b.has_value());
  return std::move(*b);
}

inline std::unique_ptr<Producer> MakeProducer(const std::string& bootstrap) {
  ProducerOptions o;
  o.bootstrap = bootstrap;
  auto p = Producer::Create(o);
  REQUIRE(p.has_value());
  return std::move(*p);
}

// What the ledger must decide for each event id, in the order sent (a duplicate is
// sent twice: accepted, then DUPLICATE_EVENT).
using Expectations = std::map<std::string, std::deque<Reason>>;

// Produces one event of a demo step: a control event to every partition, an applicant
// event keyed by its applicant. Returns the Kafka messages it makes. No Catch assertion,
// so that threads other than the test's may call it.
inline Result<uint64_t> TrySendEvent(Producer& producer, const DemoStep& step,
                                     const PlannedEvent& pe, int partitions) {
  std::string value = SignDemoEvent(step, pe.event, Keys());
  if (step.control) {
    G60_TRY(producer.SendToAll(value, pe.event.event_id()));
    return static_cast<uint64_t>(partitions);
  }
  G60_TRY(producer.Send(pe.event.applicant_id(), value, pe.event.event_id()));
  return uint64_t{1};
}

inline uint64_t SendEvent(Producer& producer, const DemoStep& step, const PlannedEvent& pe,
                          int partitions) {
  auto sent = TrySendEvent(producer, step, pe, partitions);
  INFO((sent ? "" : sent.error().ToString()));
  REQUIRE(sent.has_value());
  return *sent;
}

// Produces the demo stream; returns the number of Kafka messages and the expectations.
inline uint64_t ProduceStream(Producer& producer, const std::vector<DemoStep>& steps,
                              Expectations& expect) {
  uint64_t messages = 0;
  auto partitions_or = producer.PartitionCount();
  REQUIRE(partitions_or.has_value());
  const int partitions = *partitions_or;
  for (const auto& step : steps) {
    for (const auto& pe : step.events) {
      uint64_t sent = SendEvent(producer, step, pe, partitions);
      messages += sent;
      for (uint64_t i = 0; i < sent; ++i)
        expect[pe.event.event_id()].push_back(pe.expected);
    }
    auto summary = producer.Flush();
    REQUIRE(summary.has_value());
    REQUIRE(summary->failures.empty());
  }
  return messages;
}

struct Census {
  uint64_t entries = 0;
  std::map<std::string, std::deque<Reason>> seen;  // event id -> reasons in chain order
  std::map<Reason, uint64_t> by_reason;
};

inline Census ReadAll(const Ledger& ledger) {
  Census c;
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  auto cur = lmdb::Cursor::Open(*txn, ledger.tables().entries);
  for (auto ok = cur->First(); *ok; ok = cur->Next()) {
    auto e = DecodeEntry(cur->value());
    REQUIRE(e.has_value());
    ++c.entries;
    ++c.by_reason[e->body.reason()];
    if (!e->body.event_id().empty()) c.seen[e->body.event_id()].push_back(e->body.reason());
  }
  return c;
}

inline std::unique_ptr<Ledger> OpenReader(const std::string& dir) {
  LedgerOptions o;
  o.dir = dir;
  o.trust_anchors = {Keys().admin.public_key};
  auto l = Ledger::Open(o);
  REQUIRE(l.has_value());
  return std::move(*l);
}

inline void RequireVerified(const Ledger& ledger) {
  VerifyOptions vo;
  vo.trust_anchors = {Keys().admin.public_key};
  auto r = VerifyLedger(ledger, vo);
  REQUIRE(r.has_value());
  INFO((r->first_problem ? r->first_problem->ToString() : std::string()));
  REQUIRE(r->ok());
}

// Every partition's offsets are 0..n-1 with one entry each.
inline void RequireOneEntryPerMessage(const Ledger& ledger, uint64_t messages) {
  auto heads = ledger.Heads();
  REQUIRE(heads.has_value());
  uint64_t total = 0;
  for (const auto& h : *heads) {
    CHECK(h.next_offset == static_cast<int64_t>(h.size));
    total += h.size;
  }
  CHECK(total == messages);
}

// Entries in a ledger directory (0 when it cannot be opened yet), read while another
// process may be writing it.
inline uint64_t EntriesIn(const std::string& dir) {
  LedgerOptions o;
  o.dir = dir;
  auto l = Ledger::Open(o);
  if (!l) return 0;
  auto heads = (*l)->Heads();
  uint64_t n = 0;
  if (heads) {
    for (const auto& h : *heads)
      n += h.size;
  }
  return n;
}

// The test ledger's checkpoint key (role ledger), derived from a fixed seed.
inline const CheckpointKey& TestLedgerKey() {
  static const CheckpointKey k = [] {
    KeyPair kp = KeyPairFromSeed(std::string(32, '\x60'));
    return CheckpointKey{"test.g60ledger/songjiang", kp.secret_key, kp.public_key};
  }();
  return k;
}

// Produces the demo stream (every programme, every policy scenario, forgeries and
// duplicates) and ingests it into `dir` until caught up, signing checkpoints every 100
// entries and at the end; the planned steps are returned for expectations.
inline std::vector<DemoStep> IngestDemoStream(const std::string& dir, DevBroker& broker,
                                              int applicants, uint64_t seed,
                                              IngestStats* stats_out = nullptr,
                                              const std::string& checkpoint_topic = "") {
  auto producer = MakeProducer(broker.bootstrap());
  DemoStreamOptions so;
  so.applicants = applicants;
  so.seed = seed;
  so.catalog = TestCatalog();
  auto steps = GenerateDemoStream(so, Keys());
  Expectations expect;
  ProduceStream(*producer, steps, expect);
  auto ledger = OpenTestLedger(dir, size_t{256} << 20, kPartitions);
  Checkpointer cp(TestLedgerKey(), 100, std::chrono::seconds(3600));
  IngestOptions io;
  io.bootstrap = broker.bootstrap();
  io.until_caught_up = true;
  io.group_id = "it-demo";
  io.checkpointer = &cp;
  io.checkpoint_topic = checkpoint_topic;
  std::atomic<bool> stop{false};
  auto stats = RunIngest(*ledger, io, stop);
  REQUIRE(stats.has_value());
  if (stats_out) *stats_out = *stats;
  return steps;
}

}  // namespace g60::testing
