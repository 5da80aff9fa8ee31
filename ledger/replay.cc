#include "ledger/replay.h"

#include <fmt/format.h>

#include "ledger/bytes.h"
#include "ledger/entry.h"

namespace g60 {

Record RecordOf(const ledger::v1::EntryBody& body) {
  const auto& src = body.source();
  return Record{src.topic(),  static_cast<uint32_t>(src.partition()),
                src.offset(), src.timestamp_ms(),
                src.key(),    body.value()};
}

Status ReplayLedger(const Ledger& source, Ledger& target, uint32_t batch_entries) {
  auto txn = lmdb::Txn::Begin(source.env(), true);
  if (!txn) return Fail(txn.error());
  auto cur = lmdb::Cursor::Open(*txn, source.tables().entries);
  if (!cur) return Fail(cur.error());
  PublicKeyLookup lookup = [&target](std::string_view id) { return target.PublicKeyOf(id); };
  std::optional<Batch> batch;
  for (auto ok = cur->First();; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    auto entry = DecodeEntry(cur->value());
    if (!entry) return Fail(entry.error());
    Record r = RecordOf(entry->body);
    if (!batch) {
      auto b = target.BeginBatch();
      if (!b) return Fail(b.error());
      batch.emplace(std::move(*b));
    }
    // A key granted earlier in this batch is not in the cache yet; Decide then checks
    // the signature itself.
    auto out = batch->Append(r, Precheck(r.value, lookup));
    if (!out) return Fail(out.error());
    if (batch->appended() >= batch_entries) {
      G60_TRY(batch->Commit());
      batch.reset();
    }
  }
  if (batch) G60_TRY(batch->Commit());
  return {};
}

Result<std::optional<std::string>> CompareLedgers(const Ledger& a, const Ledger& b) {
  auto ta = lmdb::Txn::Begin(a.env(), true);
  if (!ta) return Fail(ta.error());
  auto tb = lmdb::Txn::Begin(b.env(), true);
  if (!tb) return Fail(tb.error());
  const Tables& A = a.tables();
  const Tables& B = b.tables();
  struct {
    const char* name;
    MDB_dbi da, db;
  } tables[] = {{"entries", A.entries, B.entries},
                {"heads", A.heads, B.heads},
                {"event_ids", A.event_ids, B.event_ids},
                {"keys", A.keys, B.keys},
                {"pubkeys", A.pubkeys, B.pubkeys},
                {"applications", A.applications, B.applications},
                {"approvals", A.approvals, B.approvals},
                {"payments", A.payments, B.payments},
                {"policy", A.policy, B.policy},
                {"catalogs", A.catalogs, B.catalogs},
                {"catalog_blobs", A.catalog_blobs, B.catalog_blobs},
                {"merkle", A.merkle, B.merkle},
                {"index", A.index, B.index},
                {"totals", A.totals, B.totals}};
  // Not compared: "checkpoints" and meta's checkpoint key, which depend on when and
  // with which key a ledger signed, not on its records.
  for (const auto& t : tables) {
    if (b.replay_scratch() && (t.db == B.merkle || t.db == B.index)) continue;
    auto ca = lmdb::Cursor::Open(*ta, t.da);
    auto cb = lmdb::Cursor::Open(*tb, t.db);
    if (!ca) return Fail(ca.error());
    if (!cb) return Fail(cb.error());
    auto oa = ca->First();
    auto ob = cb->First();
    uint64_t n = 0;
    while (true) {
      if (!oa) return Fail(oa.error());
      if (!ob) return Fail(ob.error());
      if (!*oa || !*ob) {
        if (*oa != *ob) {
          return std::optional<std::string>(fmt::format("table {}: {} has more rows after row {}",
                                                        t.name, *oa ? "the first" : "the second",
                                                        n));
        }
        break;
      }
      if (ca->key() != cb->key() || ca->value() != cb->value()) {
        return std::optional<std::string>(fmt::format("table {}: row {} differs (keys {} and {})",
                                                      t.name, n, HexEncode(ca->key()),
                                                      HexEncode(cb->key())));
      }
      ++n;
      oa = ca->Next();
      ob = cb->Next();
    }
  }
  return std::optional<std::string>{};
}

}  // namespace g60
