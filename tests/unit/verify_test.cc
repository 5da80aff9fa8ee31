// Tampering with a stored ledger, through LMDB itself, must be caught by verify and
// named: a changed byte anywhere in an entry, a removed entry, two entries swapped, a
// forged head, and an accepted entry whose signature no longer holds.
#include <catch2/catch.hpp>

#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/lmdb.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"
#include "ledger/verify.h"
#include "support.h"

using namespace g60;
using namespace g60::testing;

namespace {

// Builds a ledger with two partitions of ordinary traffic; returns its directory.
void BuildLedger(const std::string& dir) {
  auto ledger = OpenTestLedger(dir, size_t{64} << 20, 2);
  const auto& k = Keys();
  for (uint32_t p : {0u, 1u}) {
    const std::string applicant = ApplicantIn("91310117MA1J", p, 2);  // one in each partition
    std::vector<Record> r = GrantRecords(p);
    int64_t off = static_cast<int64_t>(r.size());
    auto add = [&](const v1::Event& e, const KeyFile& key) {
      r.push_back(MakeRecord(p, off++, e.applicant_id(), SignEvent(e, key)));
    };
    add(ApplicationEvent("app-1", applicant, 10000, 500), k.portal);
    add(ApprovalEvent("apr-1", applicant, "app-1", {200, 300}), k.district);
    add(PaymentEvent("pay-1", applicant, "apr-1", 1, 200), k.treasury);
    add(PaymentEvent("pay-2", applicant, "apr-1", 2, 999), k.treasury);  // rejected
    r.push_back(MakeRecord(p, off++, applicant, "garbage"));             // rejected
    add(ClawbackEvent("clb-1", applicant, {"pay-1"}, 50), k.treasury);
    AppendAll(*ledger, r);
  }
}

VerifyReport Verify(const std::string& dir) {
  LedgerOptions o;
  o.dir = dir;
  auto ledger = Ledger::Open(o);
  REQUIRE(ledger.has_value());
  VerifyOptions vo;
  vo.trust_anchors = {Keys().admin.public_key};
  auto report = VerifyLedger(**ledger, vo);
  REQUIRE(report.has_value());
  return *report;
}

// Runs `edit` in a write transaction on the raw entries table.
template <typename Fn>
void Tamper(const std::string& dir, Fn edit) {
  lmdb::EnvOptions eo;
  eo.map_size_bytes = size_t{64} << 20;
  auto env = lmdb::Env::Open(dir, eo);
  REQUIRE(env.has_value());
  auto txn = lmdb::Txn::Begin(*env, false);
  auto entries = txn->OpenDb("entries", false);
  auto heads = txn->OpenDb("heads", false);
  edit(*txn, *entries, *heads);
  REQUIRE(txn->Commit().has_value());
}

std::string Get(lmdb::Txn& txn, MDB_dbi dbi, const std::string& key) {
  auto v = txn.Get(dbi, key);
  REQUIRE(v.has_value());
  REQUIRE(v->has_value());
  return std::string(**v);
}

}  // namespace

TEST_CASE("an intact ledger verifies", "[verify]") {
  TempDir dir;
  BuildLedger(dir.path());
  auto r = Verify(dir.path());
  CHECK(r.ok());
  CHECK(r.entries == 22);
  CHECK(r.signatures == 18);  // accepted: 4 grants + catalogue + app + apr + pay + clawback, twice
  REQUIRE(r.heads.size() == 2);
  CHECK(r.heads[1].size == 11);
}

TEST_CASE("verify without the right trust anchors refuses the chain", "[verify]") {
  TempDir dir;
  BuildLedger(dir.path());
  LedgerOptions o;
  o.dir = dir.path();
  auto ledger = Ledger::Open(o);
  VerifyOptions vo;
  vo.trust_anchors = {Keys().rogue.public_key};
  auto r = VerifyLedger(**ledger, vo);
  REQUIRE_FALSE(r->ok());
  CHECK(r->first_problem->sequence == 0);
  CHECK(r->first_problem->finding == Finding::kNotAuthorised);
  CHECK_THAT(r->first_problem->what,
             Catch::Contains("was never granted before it") &&
                 Catch::Contains("or the trust anchors given are not the ones the ledger was "
                                 "created with"));
}

TEST_CASE("changing any byte of a stored entry is detected and named", "[verify][tamper]") {
  TempDir base;
  BuildLedger(base.path());
  // Every byte of a few entries of partition 1: a grant, the payment, the garbage one.
  for (uint64_t seq : {0ull, 7ull, 9ull}) {
    std::string original;
    Tamper(base.path(), [&](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
      original = Get(txn, entries, EntryKey(1, seq));
    });
    for (size_t pos = 0; pos < original.size(); ++pos) {
      std::string changed = original;
      changed[pos] = static_cast<char>(changed[pos] ^ 0x5a);
      Tamper(base.path(), [&](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
        REQUIRE(txn.Put(entries, EntryKey(1, seq), changed).has_value());
      });
      auto r = Verify(base.path());
      INFO("entry " << seq << " byte " << pos);
      REQUIRE_FALSE(r.ok());
      CHECK(r.first_problem->partition == 1);
      // The changed entry, or (when the change still parses) the link after it, or the head.
      CHECK(r.first_problem->sequence >= seq);
      CHECK(r.first_problem->sequence <= seq + 1);
      Tamper(base.path(), [&](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
        REQUIRE(txn.Put(entries, EntryKey(1, seq), original).has_value());
      });
    }
  }
  CHECK(Verify(base.path()).ok());  // restored
}

// Signs a checkpoint of every partition as the ledger holds it now.
void SignCheckpoints(const std::string& dir) {
  auto ledger = OpenTestLedger(dir, size_t{64} << 20, 2);
  KeyPair kp = KeyPairFromSeed(std::string(32, '\x61'));
  Checkpointer cp(CheckpointKey{"test.g60ledger/verify", kp.secret_key, kp.public_key}, 1,
                  std::chrono::milliseconds(0));
  auto batch = ledger->BeginBatch();
  REQUIRE(batch.has_value());
  REQUIRE(cp.IssueDue(*batch, true).has_value());
  REQUIRE(batch->Commit().has_value());
}

// Removes partition 1's last entry (10) and rewrites its head to end at entry 9: a
// truncation that the chain alone cannot see.
void RemoveLastEntryAndRewriteHead(const std::string& dir) {
  Tamper(dir, [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi heads) {
    std::string prev = Get(txn, entries, EntryKey(1, 9));
    REQUIRE(txn.Del(entries, EntryKey(1, 10)).has_value());
    PartitionHead h{1, 10, EntryHash(prev), 10};
    std::string key;
    key.append("\0\0\0\1", 4);
    REQUIRE(txn.Put(heads, key, EncodeHead(h)).has_value());
  });
}

TEST_CASE("a removed entry is detected", "[verify][tamper]") {
  SECTION("from the middle") {
    TempDir dir;
    BuildLedger(dir.path());
    Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
      REQUIRE(txn.Del(entries, EntryKey(0, 5)).has_value());
    });
    auto r = Verify(dir.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.first_problem->finding == Finding::kRemoved);
    CHECK(r.first_problem->ToString() ==
          "partition 0 entry 5: entry 5 was removed: the chain goes on at entry 6. The chain is "
          "intact up to entry 4 (recorded 2026-01-01 08:00:00 CST); no checkpoint signed by the "
          "ledger covers entry 5 yet");
  }
  SECTION("the last one") {
    TempDir dir;
    BuildLedger(dir.path());
    Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
      REQUIRE(txn.Del(entries, EntryKey(1, 10)).has_value());
    });
    auto r = Verify(dir.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.first_problem->partition == 1);
    CHECK(r.first_problem->finding == Finding::kRemoved);
    CHECK_THAT(r.first_problem->what,
               Catch::StartsWith("entry 10 was removed from the end of the chain") &&
                   Catch::Contains("head record says 11 entries"));
  }
  SECTION("the last one, with the head rewritten to match") {
    TempDir dir;
    BuildLedger(dir.path());
    RemoveLastEntryAndRewriteHead(dir.path());
    // With no checkpoint signed yet, a consistent truncation is invisible to the chain
    // alone. The chain still verifies.
    CHECK(Verify(dir.path()).ok());
  }
  SECTION("the last one, with the head rewritten to match, after a checkpoint was signed") {
    TempDir dir;
    BuildLedger(dir.path());
    SignCheckpoints(dir.path());
    RemoveLastEntryAndRewriteHead(dir.path());
    auto r = Verify(dir.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.first_problem->finding == Finding::kRemoved);
    CHECK(r.first_problem->ToString() ==
          "partition 1 entry 10: entry 10 was removed after the ledger signed it (its "
          "checkpoint of 11 entries; the chain now holds 10). The chain is intact up to entry 9 "
          "(recorded 2026-01-01 08:00:00 CST); the ledger's checkpoint of 11 entries covered "
          "entry 10, so the change was made after that checkpoint was signed");
  }
}

TEST_CASE("an entry removed from the middle, the chain rebuilt after it, is called a rewrite",
          "[verify][tamper]") {
  // Found by an attacker's review: with the later entries renumbered and relinked, the
  // Merkle log and head rebuilt, verify said only the last entry was removed and that
  // the chain was intact before it.
  TempDir dir;
  BuildLedger(dir.path());
  SignCheckpoints(dir.path());
  Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi heads) {
    auto merkle_dbi = txn.OpenDb("merkle", false);
    REQUIRE(merkle_dbi.has_value());
    Tables t{};
    t.merkle = *merkle_dbi;
    // Partition 1's entries 0..10 become 0..4 and 6..10 renumbered as 5..9.
    std::vector<std::string> bodies;
    for (uint64_t seq = 0; seq < 11; ++seq) {
      auto e = DecodeEntry(Get(txn, entries, EntryKey(1, seq)));
      REQUIRE(e.has_value());
      if (seq != 5) bodies.push_back(e->body.SerializeAsString());
      REQUIRE(txn.Del(entries, EntryKey(1, seq)).has_value());
    }
    for (uint32_t level = 0; level < 8; ++level) {
      for (uint64_t i = 0; i < 16; ++i)
        (void)txn.Del(*merkle_dbi, MerkleKey(1, level, i));
    }
    Hash prev{};
    for (uint64_t seq = 0; seq < bodies.size(); ++seq) {
      std::string bytes = EncodeEntry(1, seq, prev, bodies[seq]);
      REQUIRE(txn.Put(entries, EntryKey(1, seq), bytes).has_value());
      prev = EntryHash(bytes);
      auto writes = merkle::AppendLeaf(MerkleNodes(txn, t, 1), seq, prev);
      REQUIRE(writes.has_value());
      for (const auto& w : *writes)
        REQUIRE(txn.Put(*merkle_dbi, MerkleKey(1, w.level, w.index), AsBytes(w.hash)).has_value());
    }
    PartitionHead h{1, bodies.size(), prev, 11};
    REQUIRE(txn.Put(heads, std::string("\0\0\0\1", 4), EncodeHead(h)).has_value());
  });
  auto r = Verify(dir.path());
  REQUIRE_FALSE(r.ok());
  INFO(r.first_problem->ToString());
  CHECK(r.first_problem->partition == 1);
  CHECK_THAT(r.first_problem->ToString(),
             Catch::Contains("the chain was rewritten: it holds 10 entries where the ledger "
                             "signed 11") &&
                 !Catch::Contains("intact"));
}

TEST_CASE("two swapped entries are detected", "[verify][tamper]") {
  TempDir dir;
  BuildLedger(dir.path());
  Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
    std::string a = Get(txn, entries, EntryKey(0, 5));
    std::string b = Get(txn, entries, EntryKey(0, 6));
    REQUIRE(txn.Put(entries, EntryKey(0, 5), b).has_value());
    REQUIRE(txn.Put(entries, EntryKey(0, 6), a).has_value());
  });
  auto r = Verify(dir.path());
  REQUIRE_FALSE(r.ok());
  CHECK(r.first_problem->finding == Finding::kReordered);
  CHECK_THAT(r.first_problem->ToString(),
             Catch::StartsWith("partition 0 entry 5: entry 5 holds the bytes of entry 6: "
                               "entries were reordered, or one was copied over another. The "
                               "chain is intact up to entry 4"));
}

TEST_CASE("an entry moved from another partition is detected", "[verify][tamper]") {
  TempDir dir;
  BuildLedger(dir.path());
  Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi) {
    REQUIRE(txn.Put(entries, EntryKey(0, 2), Get(txn, entries, EntryKey(1, 2))).has_value());
  });
  auto r = Verify(dir.path());
  REQUIRE_FALSE(r.ok());
  CHECK(r.first_problem->partition == 0);
  CHECK(r.first_problem->sequence == 2);
}

TEST_CASE("a rejected entry rewritten as accepted fails its signature or chain",
          "[verify][tamper]") {
  TempDir dir;
  BuildLedger(dir.path());
  // Re-encode entry 8 (a payment rejected for exceeding its stage) as accepted with a
  // forged signature, and rebuild every later link, the head and the Merkle log so that
  // the chain and the log are consistent: only the signature replay can object.
  Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi entries, MDB_dbi heads) {
    auto merkle_dbi = txn.OpenDb("merkle", false);
    REQUIRE(merkle_dbi.has_value());
    Hash prev = EntryHash(Get(txn, entries, EntryKey(0, 7)));
    for (uint64_t seq = 8; seq < 11; ++seq) {
      auto e = DecodeEntry(Get(txn, entries, EntryKey(0, seq)));
      REQUIRE(e.has_value());
      auto body = e->body;
      if (seq == 8) {
        body.set_verdict(ledger::v1::VERDICT_ACCEPTED);
        v1::SignedEvent se;
        REQUIRE(se.ParseFromString(body.value()));
        se.set_signature(std::string(64, '\x01'));
        body.set_value(se.SerializeAsString());
      }
      std::string bytes = EncodeEntry(0, seq, prev, body.SerializeAsString());
      REQUIRE(txn.Put(entries, EntryKey(0, seq), bytes).has_value());
      prev = EntryHash(bytes);
      Tables t{};
      t.merkle = *merkle_dbi;
      auto writes = merkle::AppendLeaf(MerkleNodes(txn, t, 0), seq, prev);
      REQUIRE(writes.has_value());
      for (const auto& w : *writes) {
        REQUIRE(txn.Put(*merkle_dbi, MerkleKey(0, w.level, w.index), AsBytes(w.hash)).has_value());
      }
    }
    PartitionHead h{0, 11, prev, 11};
    REQUIRE(txn.Put(heads, std::string("\0\0\0\0", 4), EncodeHead(h)).has_value());
  });
  auto r = Verify(dir.path());
  REQUIRE_FALSE(r.ok());
  CHECK(r.first_problem->finding == Finding::kAltered);
  CHECK_THAT(r.first_problem->ToString(),
             Catch::StartsWith("partition 0 entry 8: entry 8 is recorded as accepted, but its "
                               "event's Ed25519 signature does not verify: the event was "
                               "altered after it was signed, or forged."));
}

TEST_CASE("a Merkle log that disagrees with the entries is detected", "[verify][tamper][merkle]") {
  TempDir dir;
  BuildLedger(dir.path());
  Tamper(dir.path(), [](lmdb::Txn& txn, MDB_dbi, MDB_dbi) {
    auto merkle_dbi = txn.OpenDb("merkle", false);
    REQUIRE(merkle_dbi.has_value());
    // The subtree of leaves 4..7 of partition 1.
    std::string key = MerkleKey(1, 2, 1);
    std::string node = Get(txn, *merkle_dbi, key);
    node[0] = static_cast<char>(node[0] ^ 1);
    REQUIRE(txn.Put(*merkle_dbi, key, node).has_value());
  });
  auto r = Verify(dir.path());
  REQUIRE_FALSE(r.ok());
  CHECK(r.first_problem->partition == 1);
  CHECK(r.first_problem->sequence == 7);  // the leaf that completes that subtree
  CHECK_THAT(r.first_problem->what,
             Catch::StartsWith("entry 7, or the Merkle log kept beside the entries, was altered "
                               "after it was appended (Merkle subtree (2, 1) is "));
}

TEST_CASE("the stored Merkle log matches the entries: heads and proofs of every entry",
          "[verify][merkle]") {
  TempDir dir;
  BuildLedger(dir.path());
  LedgerOptions o;
  o.dir = dir.path();
  auto ledger = Ledger::Open(o);
  REQUIRE(ledger.has_value());
  auto txn = lmdb::Txn::Begin((*ledger)->env(), true);
  auto head = (*ledger)->Head(1);
  uint64_t n = (*head)->size;
  merkle::MemoryTree reference;
  for (uint64_t i = 0; i < n; ++i) {
    auto v = txn->Get((*ledger)->tables().entries, EntryKey(1, i));
    reference.Append(EntryHash(**v));
  }
  auto nodes = MerkleNodes(*txn, (*ledger)->tables(), 1);
  Hash root = *merkle::Root(nodes, n);
  CHECK(root == *merkle::Root(reference.Source(), n));
  for (uint64_t i = 0; i < n; ++i) {
    auto proof = merkle::InclusionProof(nodes, i, n);
    REQUIRE(proof.has_value());
    CHECK(merkle::VerifyInclusion(i, n, *reference.Source()(0, i), *proof, root).has_value());
  }
}
