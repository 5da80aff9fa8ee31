// The auditor's toolkit end to end: ingest signs checkpoints and produces them to
// g60.checkpoints; every event's proof bundle and every payment trace verifies offline
// with only the ledger key and the trust anchors; an edit anywhere in a bundle fails;
// a ledger rewritten after a checkpoint fails verify-consistency and audit.
#include <fmt/format.h>
#include <librdkafka/rdkafkacpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "consumers/ingest.h"
#include "integration/harness.h"
#include "ledger/audit.h"
#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/index.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"
#include "process.h"
#include "producers/keyfile.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;
using nlohmann::json;

namespace {

const CheckpointKey& LedgerKey() {
  return TestLedgerKey();
}

BundleTrust Trust() {
  return BundleTrust{LedgerKey().verifier(), {Keys().admin.public_key}};
}

// Every signed note on the checkpoint topic, by origin, in the order produced.
std::map<std::string, std::vector<std::string>> ReadCheckpointTopic(const std::string& bootstrap) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  REQUIRE(conf->set("bootstrap.servers", bootstrap, err) == RdKafka::Conf::CONF_OK);
  REQUIRE(conf->set("group.id", "audit-test", err) == RdKafka::Conf::CONF_OK);
  REQUIRE(conf->set("enable.partition.eof", "true", err) == RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  REQUIRE(c);
  std::vector<RdKafka::TopicPartition*> tp{
      RdKafka::TopicPartition::create("g60.checkpoints", 0, RdKafka::Topic::OFFSET_BEGINNING)};
  REQUIRE(c->assign(tp) == RdKafka::ERR_NO_ERROR);
  RdKafka::TopicPartition::destroy(tp);
  std::map<std::string, std::vector<std::string>> out;
  for (int i = 0; i < 600; ++i) {
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() == RdKafka::ERR__PARTITION_EOF) break;
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    out[*m->key()].emplace_back(static_cast<const char*>(m->payload()), m->len());
  }
  c->close();
  return out;
}

IngestStats IngestDemo(const std::string& dir, DevBroker& broker) {
  IngestStats stats;
  IngestDemoStream(dir, broker, 120, 5, &stats, "g60.checkpoints");
  return stats;
}

// Every way of editing a JSON value: each must make the bundle fail.
std::vector<json> Edits(const json& v) {
  std::vector<json> out;
  if (v.is_string()) {
    std::string s = v;
    out.push_back(s + "x");
    if (!s.empty()) {
      std::string t = s;
      t[t.size() / 2] = t[t.size() / 2] == 'A' ? 'B' : 'A';
      out.push_back(t);
    }
  } else if (v.is_number_unsigned()) {
    out.push_back(v.get<uint64_t>() + 1);
    if (v.get<uint64_t>() > 0) out.push_back(v.get<uint64_t>() - 1);
  } else if (v.is_number_integer()) {
    out.push_back(v.get<int64_t>() + 1);
  } else if (v.is_array()) {
    json a = v;
    a.push_back("extra");
    out.push_back(a);
    if (!v.empty()) {
      json b = v;
      b.erase(b.size() - 1);
      out.push_back(b);
    }
  } else if (v.is_object()) {
    json o = v;
    o["extra"] = 1;
    out.push_back(o);
  }
  return out;
}

// A signature line by `name` with `secret_key` over `text` ("— name base64\n").
std::string SignatureLine(std::string_view text, const std::string& name,
                          const std::string& secret_key) {
  auto n = note::Sign(text, name, secret_key);
  REQUIRE(n.has_value());
  return n->substr(text.size() + 1);
}

// Issue 13's signed-note variants of a checkpoint note, each with the outcome
// c2sp.org/signed-note gives (tests/vectors/signed-notes.json has them all and more).
struct NoteVariant {
  std::string what;
  std::string note;
  bool accept;
  std::string says;  // in verify-proof's refusal
};
std::vector<NoteVariant> IssueVariants(const std::string& note) {
  std::string text = *note::UnverifiedText(note);
  std::string crlf;
  for (char c : note)
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  std::string other = text;  // the ledger's signature of another text fails on this one
  other.replace(other.find('\n') + 1, 1, other[other.find('\n') + 1] == '1' ? "2" : "1");
  std::string failing = SignatureLine(other, LedgerKey().name, LedgerKey().secret_key);
  std::string witness = SignatureLine(text, "witness.example/w1", Keys().rogue.secret_key);
  std::string signatures = note.substr(text.size() + 1);
  return {
      {"CRLF line ends", crlf, false, "carriage return (CR)"},
      {"no final newline", note.substr(0, note.size() - 1), false, "does not end with a newline"},
      {"an extra signature by an unknown key", note + witness, true, ""},
      {"an extra line that is not a signature line", note + "not a signature\n", false,
       "signature line 2 of the note is not"},
      {"a failing signature by the ledger key before its valid one (the issue's example)",
       text + "\n" + failing + signatures, false, "signature line 1) does not verify"},
      {"a failing signature by the ledger key after its valid one", note + failing, false,
       "signature line 2) does not verify"},
  };
}

}  // namespace

TEST_CASE("after ingest, every event's bundle and every payment trace verify offline",
          "[integration][audit]") {
  BrokerOptions bo;
  bo.topics = {{"g60.events", kPartitions}, {"g60.checkpoints", 1}};
  auto broker = DevBroker::Start(bo);
  REQUIRE(broker.has_value());
  TempDir dir;
  IngestStats stats = IngestDemo(dir.path(), **broker);
  REQUIRE(stats.appended > 500);
  // One checkpoint per 100 entries of a partition at most, and one at the end of each.
  REQUIRE(stats.checkpoints >= static_cast<uint64_t>(kPartitions));
  REQUIRE(stats.checkpoints_published == stats.checkpoints);

  auto ledger = OpenReader(dir.path());
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  REQUIRE(txn.has_value());
  const Tables& t = ledger->tables();

  // The topic holds each checkpoint; the last of each origin is the ledger's latest,
  // and each note opens with the ledger key.
  auto topic = ReadCheckpointTopic((*broker)->bootstrap());
  REQUIRE(topic.size() == static_cast<size_t>(kPartitions));
  uint64_t on_topic = 0;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    auto latest = LatestCheckpoint(*txn, t, p);
    REQUIRE(latest.has_value());
    REQUIRE(latest->has_value());
    auto& notes = topic[CheckpointOrigin(LedgerKey().name, p)];
    REQUIRE(!notes.empty());
    CHECK(notes.back() == (*latest)->note);
    for (const auto& n : notes)
      CHECK(note::Open(n, LedgerKey().verifier()).has_value());
    on_topic += notes.size();
    // Covers every entry (signed when ingest caught up).
    auto head = ledger->Head(p);
    CHECK((*latest)->size == (*head)->size);
  }
  CHECK(on_topic == stats.checkpoints);

  // Every entry: by event id where it claimed one, by position otherwise.
  std::set<std::string> ids;
  std::vector<EntryRef> unclaimed;
  std::vector<std::string> payments;
  auto heads = ReadHeads(*txn, t);
  REQUIRE(heads.has_value());
  for (const auto& h : *heads) {
    for (uint64_t s = 0; s < h.size; ++s) {
      auto v = txn->Get(t.entries, EntryKey(h.partition, s));
      auto e = DecodeEntry(**v);
      REQUIRE(e.has_value());
      auto found = FindEvent(*txn, t, e->body.event_id());
      bool claimed = !e->body.event_id().empty() && found.has_value() &&
                     std::any_of(found->begin(), found->end(), [&](const FoundEvent& f) {
                       return f.at == EntryRef{h.partition, s};
                     });
      if (claimed) {
        ids.insert(e->body.event_id());
        if (e->body.event_type() == ledger::v1::EVENT_TYPE_STAGE_PAYMENT &&
            e->body.verdict() == ledger::v1::VERDICT_ACCEPTED) {
          payments.push_back(e->body.event_id());
        }
      } else {
        unclaimed.push_back(EntryRef{h.partition, s});
      }
    }
  }
  REQUIRE(!unclaimed.empty());  // forgeries, malformed records, duplicates
  REQUIRE(payments.size() > 20);
  uint64_t links = 0;
  for (const auto& id : ids) {
    INFO(id);
    auto refs = ResolveEvent(*txn, t, id, std::nullopt);
    REQUIRE(refs.has_value());
    auto bundle = BuildBundle(*ledger, *refs, "event", id);
    REQUIRE(bundle.has_value());
    auto ok = VerifyBundle(*bundle, Trust());
    if (!ok) FAIL(ok.error().ToString());
    links += ok->size();
  }
  for (const auto& at : unclaimed) {
    std::string subject = fmt::format("{}:{}", at.partition, at.sequence);
    INFO(subject);
    auto bundle = BuildBundle(*ledger, {at}, "event", subject);
    REQUIRE(bundle.has_value());
    auto ok = VerifyBundle(*bundle, Trust());
    if (!ok) FAIL(ok.error().ToString());
  }
  CHECK(links > ids.size());  // key grants ride along

  // Every payment's trace; the clawed-back ones show the whole chain. Each is also
  // written out for the independent verifier written from docs/audit.md.
  size_t with_clawback = 0;
  json sample;
  std::vector<std::string> python = {
      "/usr/bin/python3", std::string(G60_SOURCE_DIR) + "/tests/tools/verify_bundle.py",
      "--ledger-key",     note::VerifierKey(LedgerKey().verifier()),
      "--anchor",         Base64Encode(Keys().admin.public_key)};
  for (const auto& id : payments) {
    INFO(id);
    auto refs = TraceEntries(*txn, t, id, std::nullopt);
    REQUIRE(refs.has_value());
    auto bundle = BuildBundle(*ledger, *refs, "trace", id);
    REQUIRE(bundle.has_value());
    auto ok = VerifyBundle(*bundle, Trust());
    if (!ok) FAIL(ok.error().ToString());
    std::set<std::string> roles;
    for (const auto& l : *ok)
      roles.insert(l.role);
    CHECK(roles.count("application"));
    CHECK(roles.count("approval"));
    CHECK(roles.count("payment"));
    if (roles.count("clawback")) {
      ++with_clawback;
      if (sample.is_null()) sample = *bundle;
    }
    std::string path = fmt::format("{}/trace-{}.json", dir.path(), python.size());
    std::ofstream(path) << bundle->dump();
    python.push_back(path);
  }
  REQUIRE(with_clawback > 0);
  {
    auto independent = Run(python, dir.path() + "/python.out");
    INFO(independent.output);
    CHECK(independent.status == 0);
    CHECK(independent.output.find(fmt::format("OK: {} bundle(s)", payments.size())) !=
          std::string::npos);
    json edited = sample;
    edited["links"].back()["amount_fen"] = edited["links"].back()["amount_fen"].get<int64_t>() + 1;
    std::ofstream(python.back()) << edited.dump();
    auto refused = Run(python, dir.path() + "/python2.out");
    INFO(refused.output);
    CHECK(refused.status == 1);
    CHECK(refused.output.find("amount_fen") != std::string::npos);
  }

  SECTION("an edit of any field of a trace bundle fails") {
    // Without the ledger: only the key and anchors.
    txn->Abort();
    size_t edits = 0;
    auto expect_fail = [&](const json& b, const std::string& what) {
      INFO(what);
      CHECK_FALSE(VerifyBundle(b, Trust()).has_value());
      ++edits;
    };
    for (auto& [k, v] : sample.items()) {
      if (k == "links") continue;
      for (const auto& e : Edits(v)) {
        json b = sample;
        b[k] = e;
        expect_fail(b, "top-level " + k);
      }
      json b = sample;
      b.erase(k);
      expect_fail(b, "top-level " + k + " removed");
    }
    for (size_t i = 0; i < sample["links"].size(); ++i) {
      const json& link = sample["links"][i];
      for (auto& [k, v] : link.items()) {
        std::vector<json> edits_of = Edits(v);
        if (k == "inclusion_proof") {
          for (auto& [pk, pv] : v.items()) {
            for (const auto& e : Edits(pv)) {
              json ip = v;
              ip[pk] = e;
              edits_of.push_back(ip);
            }
          }
          for (size_t h = 0; h < v["hashes"].size(); ++h) {
            for (const auto& e : Edits(v["hashes"][h])) {
              json ip = v;
              ip["hashes"][h] = e;
              edits_of.push_back(ip);
            }
          }
        }
        if (k == "event") {
          for (auto& [ek, ev] : v.items()) {
            for (const auto& e : Edits(ev)) {
              json ej = v;
              ej[ek] = e;
              edits_of.push_back(ej);
            }
          }
        }
        for (const auto& e : edits_of) {
          json b = sample;
          b["links"][i][k] = e;
          expect_fail(b, fmt::format("link {} field {} = {}", i, k, e.dump()));
        }
        json b = sample;
        b["links"][i].erase(k);
        expect_fail(b, fmt::format("link {} field {} removed", i, k));
      }
      // A link others rest on (a key grant, the application, the approval, a payment
      // clawed back, the subject) cannot go missing. A trace proves each link's
      // inclusion, not that none was left out: a final clawback or a rejected attempt
      // can be omitted unnoticed, which is what `audit` (and the indexes) are for.
      bool leaf_link = link["role"] == "clawback" || link["verdict"] == "REJECTED";
      if (!leaf_link || link["event_id"] == sample["subject"]) {
        json b = sample;
        b["links"].erase(i);
        expect_fail(b, fmt::format("link {} ({}) removed", i, link["role"].get<std::string>()));
      }
    }
    json swapped = sample;
    std::swap(swapped["links"][0], swapped["links"][1]);
    expect_fail(swapped, "two links swapped");
    BundleTrust other = Trust();
    other.trust_anchors = {Keys().rogue.public_key};
    CHECK_FALSE(VerifyBundle(sample, other).has_value());
    other = Trust();
    other.ledger_key.public_key = Keys().rogue.public_key;
    CHECK_FALSE(VerifyBundle(sample, other).has_value());
    CHECK(edits > 200);
  }

  SECTION("the command line: prove, trace --json and verify-proof, offline") {
    txn->Abort();
    std::string cfg = dir.path() + "/auditor.toml";
    {
      std::ofstream f(cfg);
      f << "[trust]\nanchors = [\"" << Base64Encode(Keys().admin.public_key) << "\"]\n"
        << "[checkpoint]\nverifier = \"" << note::VerifierKey(LedgerKey().verifier()) << "\"\n";
    }
    std::string bundle = dir.path() + "/bundle.json";
    auto proved =
        Run({G60LEDGER_BIN, "prove", payments.front(), "--ledger", dir.path(), "-o", bundle},
            dir.path() + "/prove.out");
    INFO(proved.output);
    REQUIRE(proved.status == 0);
    auto ok = Run({G60LEDGER_BIN, "verify-proof", bundle, "--config", cfg}, dir.path() + "/vp.out");
    INFO(ok.output);
    CHECK(ok.status == 0);
    CHECK(ok.output.find("verify-proof: OK") != std::string::npos);
    // One digit of the amount changed in the decoded event.
    std::ifstream in(bundle);
    json b = json::parse(in);
    b["links"].back()["event"]["stage_payment"]["amount_fen"] = "1";
    std::ofstream(bundle) << b.dump();
    auto bad =
        Run({G60LEDGER_BIN, "verify-proof", bundle, "--config", cfg}, dir.path() + "/vp2.out");
    INFO(bad.output);
    CHECK(bad.status == 1);
    CHECK(bad.output.find("\"event\" is") != std::string::npos);

    // Issue 13, item 6: verify-proof and the Python verifier give the same answer on every
    // variant of the checkpoint note, the one c2sp.org/signed-note gives.
    auto proved_again =
        Run({G60LEDGER_BIN, "prove", payments.front(), "--ledger", dir.path(), "-o", bundle},
            dir.path() + "/prove2.out");
    REQUIRE(proved_again.status == 0);
    std::ifstream fresh(bundle);
    const json original = json::parse(fresh);
    for (const auto& v : IssueVariants(original["links"][0]["checkpoint"])) {
      INFO(v.what);
      json variant = original;
      for (auto& l : variant["links"])
        l["checkpoint"] = v.note;
      std::string path = dir.path() + "/variant.json";
      std::ofstream(path, std::ios::trunc) << variant.dump();
      auto cpp = Run({G60LEDGER_BIN, "verify-proof", path, "--config", cfg},
                     dir.path() + "/variant-cpp.out");
      auto py =
          Run({"/usr/bin/python3", std::string(G60_SOURCE_DIR) + "/tests/tools/verify_bundle.py",
               path, "--ledger-key", note::VerifierKey(LedgerKey().verifier()), "--anchor",
               Base64Encode(Keys().admin.public_key)},
              dir.path() + "/variant-py.out");
      INFO(cpp.output);
      INFO(py.output);
      CHECK(cpp.status == (v.accept ? 0 : 1));
      CHECK(py.status == (v.accept ? 0 : 1));
      if (!v.accept)
        CHECK_THAT(cpp.output, Catch::Contains("checkpoint: ") && Catch::Contains(v.says));
    }

    std::string trace = dir.path() + "/trace.json";
    auto traced = Run({G60LEDGER_BIN, "trace", payments.front(), "--ledger", dir.path(), "--anchor",
                       dir.path() + "/admin.pub", "--json", trace},
                      dir.path() + "/trace.out");
    // No admin.pub file: the verb says which file it could not read.
    CHECK(traced.status == 2);
    REQUIRE(WriteKeyFile(dir.path() + "/admin", Keys().admin).has_value());
    traced = Run({G60LEDGER_BIN, "trace", payments.front(), "--ledger", dir.path(), "--anchor",
                  dir.path() + "/admin.pub", "--json", trace},
                 dir.path() + "/trace.out");
    INFO(traced.output);
    REQUIRE(traced.status == 0);
    CHECK(traced.output.find("proofs: every link's inclusion proof and signature verify") !=
          std::string::npos);
    auto vt = Run({G60LEDGER_BIN, "verify-proof", trace, "--config", cfg}, dir.path() + "/vt.out");
    INFO(vt.output);
    CHECK(vt.status == 0);
  }
}

namespace {

// A small ledger: grants, catalogue and `n` applications in partition 0.
std::vector<Record> Records(int n, int skip = -1) {
  auto records = GrantRecords(0);
  int64_t offset = static_cast<int64_t>(records.size());
  for (int i = 0; i < n; ++i) {
    if (i == skip) continue;  // the rewritten history leaves one out
    std::string applicant = fmt::format("91310117APPLIC{:04d}", i);
    records.push_back(
        MakeRecord(0, offset++, applicant,
                   SignEvent(ApplicationEvent(fmt::format("app-{}", i), applicant, 1000000, 500000),
                             Keys().portal)));
  }
  return records;
}

StoredCheckpoint Issue(Ledger& ledger) {
  auto batch = ledger.BeginBatch();
  REQUIRE(batch.has_value());
  auto c = IssueCheckpoint(*batch, 0, LedgerKey());
  REQUIRE(c.has_value());
  REQUIRE(c->has_value());
  REQUIRE(batch->Commit().has_value());
  return **c;
}

note::Checkpoint Parse(const StoredCheckpoint& c) {
  auto text = note::Open(c.note, LedgerKey().verifier());
  REQUIRE(text.has_value());
  auto cp = note::ParseCheckpoint(*text);
  REQUIRE(cp.has_value());
  return *cp;
}

AuditReport RunAudit(const Ledger& ledger, const std::string& scratch,
                     std::vector<std::string> external = {},
                     std::vector<std::string> anchors = {Keys().admin.public_key},
                     unsigned threads = 0) {
  AuditOptions o;
  o.threads = threads;
  o.trust_anchors = std::move(anchors);
  o.ledger_key = LedgerKey().verifier();
  o.external_checkpoints = std::move(external);
  o.scratch_dir = scratch;
  auto r = AuditLedger(ledger, o);
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

// The replay keeps at most 4 chunks of 256 records per thread in its verification pool
// and must make room before handing it the last, partial chunk. Sizes beyond the pool
// and not a multiple of the chunk, on one and two threads.
TEST_CASE("audit and verify finish on ledgers larger than their verification pool", "[audit]") {
  for (auto [threads, n] : {std::pair{1u, 1400}, std::pair{2u, 2300}}) {
    TempDir dir, scratch;
    auto ledger = OpenTestLedger(dir.path());
    auto records = Records(n);
    AppendAll(*ledger, records);
    INFO("threads " << threads << ", entries " << records.size());
    REQUIRE(records.size() % 256 != 0);
    REQUIRE(records.size() > 4 * 256 * threads);
    AuditReport r =
        RunAudit(*ledger, scratch.path() + "/s", {}, {Keys().admin.public_key}, threads);
    CHECK(r.ok());
    CHECK(r.entries == records.size());
    VerifyOptions vo;
    vo.trust_anchors = {Keys().admin.public_key};
    vo.threads = threads;
    auto v = VerifyLedger(*ledger, vo);
    REQUIRE(v.has_value());
    CHECK(v->ok());
    CHECK(v->signatures == records.size());
  }
}

// The audit's replay keeps no index and no Merkle log of its own: it looks each entry's
// index keys up in the stored index and counts the rows of both tables. Every kind of
// damage to them must still be found and named.
TEST_CASE("checkpoint --issue refuses to sign over a damaged Merkle log", "[audit][tamper]") {
  TempDir dir, out;
  {
    auto ledger = OpenTestLedger(dir.path());
    AppendAll(*ledger, Records(60));
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    REQUIRE(batch->txn()
                .Put(ledger->tables().merkle, MerkleKey(0, 1, 3), std::string(32, '\x5a'))
                .has_value());
    REQUIRE(batch->Commit().has_value());
  }
  const CheckpointKey& k = LedgerKey();
  REQUIRE(WriteKeyFile(out / "ledger.key",
                       KeyFile{v1::ROLE_LEDGER, KeyIdOf(k.public_key), k.public_key, k.secret_key})
              .has_value());
  std::ofstream(out / "ledger.toml")
      << "[ledger]\ndir = \"" << dir.path() << "\"\n[trust]\nanchors = [\""
      << Base64Encode(Keys().admin.public_key) << "\"]\n[checkpoint]\nkey_file = \""
      << out / "ledger.key"
      << "\"\nname = \"" << k.name << "\"\n";
  auto r = Run({G60LEDGER_BIN, "checkpoint", "--issue", "--config", out / "ledger.toml"},
               out / "issue.log");
  INFO(r.output);
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Catch::Contains("refusing to sign a checkpoint") &&
                           Catch::Contains("Merkle subtree (1, 3)"));
  auto ledger = OpenReader(dir.path());
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  auto latest = LatestCheckpoint(*txn, ledger->tables(), 0);
  REQUIRE(latest.has_value());
  CHECK_FALSE(latest->has_value());  // nothing was signed
}

TEST_CASE("audit finds index and Merkle rows that the entries do not give", "[audit][tamper]") {
  TempDir dir, scratch;
  auto ledger = OpenTestLedger(dir.path());
  AppendAll(*ledger, Records(60));
  REQUIRE(RunAudit(*ledger, scratch.path() + "/ok").ok());
  std::string key;  // an index row of entry 30's
  {
    auto txn = lmdb::Txn::Begin(ledger->env(), true);
    REQUIRE(txn.has_value());
    auto cur = lmdb::Cursor::Open(*txn, ledger->tables().index);
    REQUIRE(cur.has_value());
    for (auto ok = cur->First(); ok && *ok; ok = cur->Next()) {
      if (IndexKeyPosition(cur->key()).sequence == 30) {
        key = std::string(cur->key());
        break;
      }
    }
  }
  REQUIRE_FALSE(key.empty());
  auto change = [&](const std::function<void(Batch&)>& edit) {
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    edit(*batch);
    REQUIRE(batch->Commit().has_value());
  };
  const Tables& t = ledger->tables();
  // The audit fails at `stage`, saying `what`.
  auto fails = [&](const std::string& stage, const std::string& what) {
    AuditReport r = RunAudit(*ledger, scratch.path() + "/damaged");
    REQUIRE_FALSE(r.ok());
    CHECK(r.stage == stage);
    CHECK_THAT(r.first_discrepancy->what, Catch::Contains(what));
    return r;
  };

  SECTION("an index row removed") {
    change([&](Batch& b) { REQUIRE(b.txn().Del(t.index, key).has_value()); });
    CHECK(fails("state", "missing in the stored index").first_discrepancy->sequence == 30);
  }
  SECTION("an index row given a value") {
    change([&](Batch& b) { REQUIRE(b.txn().Put(t.index, key, "x").has_value()); });
    fails("state", "altered in the stored index");
  }
  SECTION("an index row that no entry gives") {
    // Entry 30 indexed under an applicant it does not name.
    std::string forged = IndexKey(IndexKind::kApplicant, IndexTerm("91310117FORGED0000"), 0, 30);
    change([&](Batch& b) { REQUIRE(b.txn().Put(t.index, forged, "").has_value()); });
    fails("state", "keys no entry gives");
  }
  SECTION("a Merkle subtree that no entry made") {
    change([&](Batch& b) {
      REQUIRE(b.txn().Put(t.merkle, MerkleKey(0, 0, 1000), std::string(32, '\x01')).has_value());
    });
    VerifyOptions vo;
    vo.trust_anchors = {Keys().admin.public_key};
    auto v = VerifyLedger(*ledger, vo);
    REQUIRE(v.has_value());
    CHECK(v->ok());  // verify checks the subtrees the entries make; the audit also counts
    fails("chain", "subtrees no entry made");
  }
}

TEST_CASE("a history rewritten after a checkpoint fails verify-consistency and audit", "[audit]") {
  TempDir a_dir, b_dir, scratch;
  auto a = OpenTestLedger(a_dir.path());
  auto all = Records(60);
  AppendAll(*a, std::vector<Record>(all.begin(), all.begin() + 40));
  StoredCheckpoint c1 = Issue(*a);
  REQUIRE(c1.size == 40);
  AppendAll(*a, std::vector<Record>(all.begin() + 40, all.end()));
  StoredCheckpoint c2 = Issue(*a);
  REQUIRE(c2.size == 65);  // 4 grants, the catalogue, 60 applications

  // The honest ledger: consistent, and the audit passes with the auditor's copy of c1.
  {
    auto txn = lmdb::Txn::Begin(a->env(), true);
    auto proof = merkle::ConsistencyProof(MerkleNodes(*txn, a->tables(), 0), 40, 65);
    REQUIRE(proof.has_value());
    CHECK(merkle::VerifyConsistency(40, 65, Parse(c1).root, Parse(c2).root, *proof).has_value());
  }
  AuditReport honest = RunAudit(*a, scratch.path() + "/a", {c1.note});
  INFO(honest.ToJson().dump());
  CHECK(honest.ok());
  CHECK(honest.checkpoints == 2);
  CHECK(honest.external_checkpoints == 1);
  CHECK(honest.entries == 65);
  CHECK(honest.accepted == 65);

  // The same records with application 20 left out, signed with the same key.
  auto b = OpenTestLedger(b_dir.path());
  auto rewritten = Records(61, 20);
  AppendAll(*b, rewritten);
  StoredCheckpoint forged = Issue(*b);
  REQUIRE(forged.size == 65);
  {
    auto txn = lmdb::Txn::Begin(b->env(), true);
    auto proof = merkle::ConsistencyProof(MerkleNodes(*txn, b->tables(), 0), 40, 65);
    REQUIRE(proof.has_value());
    CHECK_FALSE(
        merkle::VerifyConsistency(40, 65, Parse(c1).root, Parse(forged).root, *proof).has_value());
  }
  // The auditor's copy of c1 exposes it.
  AuditReport caught = RunAudit(*b, scratch.path() + "/b", {c1.note});
  REQUIRE_FALSE(caught.ok());
  CHECK(caught.stage == "checkpoints");
  CHECK(caught.first_discrepancy->what.find("rewritten") != std::string::npos);

  SECTION("the command line: verify-consistency and audit with the auditor's copy") {
    std::string d = scratch.path();
    std::ofstream(d + "/c1.note") << c1.note;
    std::ofstream(d + "/c2.note") << c2.note;
    std::ofstream(d + "/forged.note") << forged.note;
    std::string key = note::VerifierKey(LedgerKey().verifier());
    auto honest_cli = Run({G60LEDGER_BIN, "verify-consistency", d + "/c1.note", d + "/c2.note",
                           "--ledger", a_dir.path(), "--ledger-key", key, "-o", d + "/proof.json"},
                          d + "/vc1.out");
    INFO(honest_cli.output);
    CHECK(honest_cli.status == 0);
    CHECK_THAT(honest_cli.output, Catch::Contains("verify-consistency: OK"));
    // The saved proof checks offline, against no ledger.
    auto offline = Run({G60LEDGER_BIN, "verify-consistency", d + "/c1.note", d + "/c2.note",
                        "--proof", d + "/proof.json", "--ledger-key", key},
                       d + "/vc2.out");
    INFO(offline.output);
    CHECK(offline.status == 0);
    // The Python verifier reads the same files the same way (issue 13, item 10). Both
    // check OLD against c2.note with a proof file, offline.
    const std::string verify_py = std::string(G60_SOURCE_DIR) + "/tests/tools/verify_bundle.py";
    auto python = [&](const std::string& old_note, const std::string& new_note,
                      const std::string& proof_file) {
      return Run({"/usr/bin/python3", verify_py, "--consistency", old_note, new_note, proof_file,
                  "--ledger-key", key},
                 d + "/py.out");
    };
    auto cpp = [&](const std::string& old_note, const std::string& proof_file,
                   const std::string& ledger_key) {
      return Run({G60LEDGER_BIN, "verify-consistency", old_note, d + "/c2.note", "--proof",
                  proof_file, "--ledger-key", ledger_key},
                 d + "/cpp.out");
    };
    auto offline_py = python(d + "/c1.note", d + "/c2.note", d + "/proof.json");
    INFO(offline_py.output);
    CHECK(offline_py.status == 0);
    CHECK_THAT(offline_py.output, Catch::Contains("OK: " + CheckpointOrigin(LedgerKey().name, 0) +
                                                  " size 65 extends size 40"));
    CHECK(python(d + "/c1.note", d + "/forged.note", d + "/proof.json").status == 1);

    // A proof file says nothing the checkpoints do not: its members exactly, its origin and
    // sizes the ones they sign. Each edit is refused by both, naming the member.
    std::ifstream pf(d + "/proof.json");
    const json proof = json::parse(pf);
    auto patched = [&](const json& patch) {  // RFC 7386: null removes a member
      json j = proof;
      j.merge_patch(patch);
      return j.dump();
    };
    std::string twice = proof.dump();
    twice.insert(twice.size() - 1, ",\"old_size\":40");
    const std::vector<std::pair<std::string, std::string>> edited_proofs = {
        {"comment", patched({{"comment", "kept for the file"}})},
        {"origin", patched({{"origin", CheckpointOrigin(LedgerKey().name, 1)}})},
        {"origin", patched({{"origin", nullptr}})},  // removed
        {"old_size", patched({{"old_size", 40.0}})},
        {"old_size", patched({{"old_size", "40"}})},
        {"new_size", patched({{"new_size", 64}})},
        {"format", patched({{"format", "g60ledger-consistency/v2"}})},
        {"hashes", patched({{"hashes", {"not base64"}}})},
        {"old_size", twice},  // named twice
    };
    for (const auto& [member, text] : edited_proofs) {
      INFO(text);
      std::ofstream(d + "/edited.json", std::ios::trunc) << text;
      auto by_cpp = cpp(d + "/c1.note", d + "/edited.json", key);
      auto by_py = python(d + "/c1.note", d + "/c2.note", d + "/edited.json");
      INFO(by_cpp.output);
      INFO(by_py.output);
      CHECK(by_cpp.status == 2);
      CHECK_THAT(by_cpp.output, Catch::Contains("\"" + member + "\""));
      CHECK(by_py.status == 1);
      CHECK_THAT(by_py.output, Catch::Contains(member));
    }
    // A checkpoint file is the note, byte for byte: with CRLF line ends it is refused, not
    // repaired; with a failing ledger signature beside the valid one too.
    for (const auto& v : IssueVariants(c1.note)) {
      INFO(v.what);
      std::ofstream(d + "/variant.note", std::ios::trunc) << v.note;
      auto by_cpp = cpp(d + "/variant.note", d + "/proof.json", key);
      auto by_py = python(d + "/variant.note", d + "/c2.note", d + "/proof.json");
      INFO(by_cpp.output);
      INFO(by_py.output);
      CHECK(by_cpp.status == (v.accept ? 0 : 2));
      CHECK(by_py.status == (v.accept ? 0 : 1));
      if (v.accept) continue;
      CHECK_THAT(by_cpp.output, Catch::Contains(v.says));
      // The audit finds an auditor's copy like it a discrepancy, for the same reason.
      std::string anchor_pub = d + "/anchor-for-variants";
      if (!std::filesystem::exists(anchor_pub + ".pub")) {
        REQUIRE(WriteKeyFile(anchor_pub, Keys().admin).has_value());
      }
      auto audited =
          Run({G60LEDGER_BIN, "audit", "--ledger", a_dir.path(), "--anchor", anchor_pub + ".pub",
               "--ledger-key", key, "--checkpoint", d + "/variant.note"},
              d + "/audit-variant.out");
      INFO(audited.output);
      CHECK(audited.status == 1);
      CHECK_THAT(audited.output,
                 Catch::Contains("the auditor's checkpoint #1") && Catch::Contains(v.says));
    }
    // A verifier key file holds the key on one line; a CRLF file is refused by name.
    std::ofstream(d + "/ledger-key.txt") << key << "\r\n";
    auto crlf_key = cpp(d + "/c1.note", d + "/proof.json", d + "/ledger-key.txt");
    INFO(crlf_key.output);
    CHECK(crlf_key.status == 2);
    CHECK_THAT(crlf_key.output, Catch::Contains("carriage return"));
    std::ofstream(d + "/ledger-key.txt", std::ios::trunc) << key << "\n";
    CHECK(cpp(d + "/c1.note", d + "/proof.json", d + "/ledger-key.txt").status == 0);
    // The rewritten ledger cannot join the auditor's c1 to its new checkpoint.
    auto caught_cli = Run({G60LEDGER_BIN, "verify-consistency", d + "/c1.note", d + "/forged.note",
                           "--ledger", b_dir.path(), "--ledger-key", key},
                          d + "/vc3.out");
    INFO(caught_cli.output);
    CHECK(caught_cli.status == 1);
    CHECK_THAT(caught_cli.output, Catch::Contains("INCONSISTENT"));
    // Nor can the honest proof join c1 to the forged checkpoint.
    auto mixed = Run({G60LEDGER_BIN, "verify-consistency", d + "/c1.note", d + "/forged.note",
                      "--proof", d + "/proof.json", "--ledger-key", key},
                     d + "/vc4.out");
    CHECK(mixed.status == 1);
    // audit exits 1 on the rewritten ledger given the auditor's copy, 0 on the honest one.
    std::string anchor = d + "/admin";
    REQUIRE(WriteKeyFile(anchor, Keys().admin).has_value());
    auto audit_b =
        Run({G60LEDGER_BIN, "audit", "--ledger", b_dir.path(), "--anchor", anchor + ".pub",
             "--ledger-key", key, "--checkpoint", d + "/c1.note", "--json", d + "/report.json"},
            d + "/audit_b.out");
    INFO(audit_b.output);
    CHECK(audit_b.status == 1);
    CHECK_THAT(audit_b.output, Catch::Contains("audit: FAILED (checkpoints)"));
    std::ifstream report(d + "/report.json");
    json j = json::parse(report);
    CHECK(j["ok"] == false);
    CHECK(j["first_discrepancy"]["stage"] == "checkpoints");
    auto audit_a = Run({G60LEDGER_BIN, "audit", "--ledger", a_dir.path(), "--anchor",
                        anchor + ".pub", "--ledger-key", key, "--checkpoint", d + "/c1.note"},
                       d + "/audit_a.out");
    INFO(audit_a.output);
    CHECK(audit_a.status == 0);
    CHECK_THAT(audit_a.output, Catch::Contains("audit: OK: 65 entries"));
  }

  SECTION("the ledger refuses to sign over a checkpoint its log contradicts") {
    auto batch = b->BeginBatch();
    REQUIRE(batch.has_value());
    std::string key;
    PutU32BE(key, 0);
    PutU64BE(key, 65);  // over the checkpoint signed at 65: the honest ledger's c1 root
    note::Checkpoint fake = Parse(c1);
    fake.size = 65;
    auto planted =
        note::Sign(note::FormatCheckpoint(fake), LedgerKey().name, LedgerKey().secret_key);
    REQUIRE(planted.has_value());
    REQUIRE(batch->txn().Put(b->tables().checkpoints, key, *planted).has_value());
    REQUIRE(batch->Commit().has_value());
    AppendAll(*b, {Records(62).back()});  // one more entry, so a checkpoint is due
    auto again = b->BeginBatch();
    auto refused = IssueCheckpoint(*again, 0, LedgerKey());
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message().find("not consistent") != std::string::npos);
  }

  SECTION("a different key cannot sign for the ledger") {
    auto batch = a->BeginBatch();
    CheckpointKey other = LedgerKey();
    KeyPair kp = KeyPairFromSeed(std::string(32, '\x61'));
    other.secret_key = kp.secret_key;
    other.public_key = kp.public_key;
    auto refused = IssueCheckpoint(*batch, 0, other);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message().find("signed by") != std::string::npos);
  }

  SECTION("audit names a decision the rules do not reproduce") {
    // An auditor who trusts another anchor: the grants are not authentic to them.
    AuditReport r = RunAudit(*a, scratch.path() + "/c", {}, {Keys().rogue.public_key});
    REQUIRE_FALSE(r.ok());
    CHECK(r.stage == "replay");
    CHECK(r.first_discrepancy->partition == 0);
    CHECK(r.first_discrepancy->sequence == 0);
    CHECK(r.first_discrepancy->what.find("the rules decide REJECTED UNKNOWN_KEY") !=
          std::string::npos);
  }

  SECTION("audit names state that the entries do not give") {
    {
      auto batch = a->BeginBatch();
      REQUIRE(batch.has_value());
      REQUIRE(batch->txn()
                  .Put(a->tables().applications, PartitionKey(0, "app-7"), "forged state")
                  .has_value());
      REQUIRE(batch->Commit().has_value());
    }
    AuditReport r = RunAudit(*a, scratch.path() + "/d");
    REQUIRE_FALSE(r.ok());
    CHECK(r.stage == "state");
    CHECK(r.first_discrepancy->what.find("applications") != std::string::npos);
  }
}

TEST_CASE("checkpoints are due by count, by time, and when forced, never twice for one size",
          "[checkpoint]") {
  TempDir dir;
  auto ledger = OpenTestLedger(dir.path());
  auto records = Records(30);
  auto issue = [&](Checkpointer& cp, bool force) {
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    auto issued = cp.IssueDue(*batch, force);
    REQUIRE(issued.has_value());
    REQUIRE(batch->Commit().has_value());
    return *issued;
  };
  Checkpointer by_count(LedgerKey(), 10, std::chrono::hours(1));
  AppendAll(*ledger, std::vector<Record>(records.begin(), records.begin() + 9));
  CHECK(issue(by_count, false).empty());  // 9 < 10, and the hour has not passed
  AppendAll(*ledger, std::vector<Record>(records.begin() + 9, records.begin() + 10));
  auto first = issue(by_count, false);
  REQUIRE(first.size() == 1);
  CHECK(first[0].size == 10);
  CHECK(issue(by_count, false).empty());
  CHECK(issue(by_count, true).empty());  // forced, but nothing new to cover
  AppendAll(*ledger, std::vector<Record>(records.begin() + 10, records.begin() + 13));
  auto forced = issue(by_count, true);
  REQUIRE(forced.size() == 1);
  CHECK(forced[0].size == 13);

  Checkpointer by_time(LedgerKey(), 1000, std::chrono::milliseconds(50));
  AppendAll(*ledger, std::vector<Record>(records.begin() + 13, records.begin() + 14));
  CHECK(issue(by_time, false).empty());  // first seen uncovered now
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  auto timed = issue(by_time, false);
  REQUIRE(timed.size() == 1);
  CHECK(timed[0].size == 14);

  // Each stored note is the one returned, and opens with the ledger key.
  auto txn = lmdb::Txn::Begin(ledger->env(), true);
  std::vector<uint64_t> sizes;
  REQUIRE(ForEachCheckpoint(*txn, ledger->tables(), [&](const StoredCheckpoint& c) -> Status {
            CHECK(Parse(c).size == c.size);
            CHECK(Parse(c).origin == "test.g60ledger/songjiang/0");
            sizes.push_back(c.size);
            return {};
          }).has_value());
  CHECK(sizes == std::vector<uint64_t>{10, 13, 14});
  auto covering = CheckpointCovering(*txn, ledger->tables(), 0, 11);
  REQUIRE(covering.has_value());
  CHECK((*covering)->size == 13);
}

// Issue 13, item 10: the ledger keeps every checkpoint it signed; an auditor who missed one
// gets it, by page or by size, from the library and from `checkpoint --all` / `--size`.
TEST_CASE("every checkpoint a partition was signed at can be listed and fetched by size",
          "[checkpoint]") {
  TempDir dir, out;
  auto ledger = OpenTestLedger(dir.path());
  auto records = Records(30);  // 4 grants and the catalogue, then 30 applications: 35 entries
  Checkpointer cp(LedgerKey(), 1, std::chrono::hours(1));
  for (auto [from, to] : {std::pair{0, 10}, std::pair{10, 20}, std::pair{20, 35}}) {
    AppendAll(*ledger, std::vector<Record>(records.begin() + from, records.begin() + to));
    auto batch = ledger->BeginBatch();
    REQUIRE(batch.has_value());
    REQUIRE(cp.IssueDue(*batch, true).has_value());
    REQUIRE(batch->Commit().has_value());
  }
  {
    auto txn = lmdb::Txn::Begin(ledger->env(), true);
    const Tables& t = ledger->tables();
    auto sizes = [&](uint64_t after, size_t limit) {
      auto list = CheckpointsOf(*txn, t, 0, after, limit);
      REQUIRE(list.has_value());
      std::vector<uint64_t> found;
      for (const auto& c : *list)
        found.push_back(c.size);
      return found;
    };
    CHECK(sizes(0, 100) == std::vector<uint64_t>{10, 20, 35});
    CHECK(sizes(0, 2) == std::vector<uint64_t>{10, 20});
    CHECK(sizes(20, 2) == std::vector<uint64_t>{35});
    CHECK(sizes(15, 1) == std::vector<uint64_t>{20});
    CHECK(sizes(35, 100).empty());
    CHECK(sizes(UINT64_MAX, 100).empty());
    auto list = CheckpointsOf(*txn, t, 1, 0, 100);  // a partition with none
    REQUIRE(list.has_value());
    CHECK(list->empty());

    auto at = CheckpointAt(*txn, t, 0, 20);
    REQUIRE(at.has_value());
    CHECK(Parse(*at).size == 20);
    auto missing = CheckpointAt(*txn, t, 0, 15);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().code() == ErrorCode::kNotFound);
    CHECK(missing.error().message() ==
          "partition 0 has no checkpoint of size 15: it has 3 checkpoints, sizes 10 to 35; the "
          "nearest are 10 and 20");
    CHECK_THAT(CheckpointAt(*txn, t, 0, 99).error().message(),
               Catch::EndsWith("the nearest is 35"));
    CHECK_THAT(CheckpointAt(*txn, t, 0, 3).error().message(), Catch::EndsWith("the nearest is 10"));
    CHECK(CheckpointAt(*txn, t, 1, 10).error().message() == "partition 1 has no checkpoint");

    // What an auditor reads of one: root, time, and the server's check.
    auto view = ViewCheckpoint(*txn, t, *at, LedgerKey().verifier());
    REQUIRE(view.has_value());
    CHECK(view->verified());
    auto root = merkle::Root(MerkleNodes(*txn, t, 0), 20);
    REQUIRE(root.has_value());
    CHECK(view->root == *root);
    CHECK(view->last_entry_timestamp_ms == 1767225600000);
    json j = view->ToJson();
    CHECK(j["last_entry_time"] == "2026-01-01 08:00:00");
    CHECK(j["root"] == Base64Encode(AsBytes(*root)));
    CHECK(j["note"] == at->note);
    // Opened with another key, it does not verify, and says why.
    KeyPair other = KeyPairFromSeed(std::string(32, '\x61'));
    auto wrong = ViewCheckpoint(*txn, t, *at, note::Verifier{LedgerKey().name, other.public_key});
    REQUIRE(wrong.has_value());
    CHECK_FALSE(wrong->verified());
    CHECK_FALSE(wrong->root.has_value());
    CHECK_FALSE(wrong->problem.empty());
  }

  // The verb.
  std::ofstream(out / "ledger.toml") << "[ledger]\ndir = \"" << dir.path() << "\"\n";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {G60LEDGER_BIN, "checkpoint", "--config", out / "ledger.toml"});
    return Run(args, out / "checkpoint.out");
  };
  auto all = run({"--all"});
  INFO(all.output);
  CHECK(all.status == 0);
  for (std::string size : {" 10 ", " 20 ", " 35 "})
    CHECK_THAT(all.output, Catch::Contains(size + " 2026-01-01 08:00:00"));
  auto as_json = run({"--all", "--json", "-"});
  REQUIRE(as_json.status == 0);
  json list = json::parse(as_json.output);
  REQUIRE(list.size() == 3);
  CHECK(list[2]["size"] == 35);
  CHECK(list[2]["verified"] == true);
  auto one = run({"--partition", "0", "--size", "20"});
  CHECK(one.status == 0);
  CHECK(one.output == list[1]["note"]);
  auto none = run({"--partition", "0", "--size", "15"});
  CHECK(none.status == 2);
  CHECK_THAT(none.output, Catch::Contains("the nearest are 10 and 20"));
  auto no_partition = run({"--size", "20"});
  CHECK(no_partition.status == 2);
  CHECK_THAT(no_partition.output, Catch::Contains("give --partition P too"));
  auto other_partition = run({"--all", "--partition", "4"});
  CHECK(other_partition.status == 2);
  CHECK_THAT(other_partition.output, Catch::Contains("no partition 4"));
}
