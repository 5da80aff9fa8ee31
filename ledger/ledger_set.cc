#include "ledger/ledger_set.h"

#include <fmt/format.h>

#include <map>

#include "ledger/entry.h"

namespace g60 {

namespace {

// More partitions than any Kafka cluster serves in one topic (KRaft clusters aim at a
// few million in all): a ledger recording more was not built by ingest, and its count
// must not drive a loop.
constexpr uint32_t kPartitionCountMax = 1u << 20;

// The entry hash at `sequence` of a partition's chain, read through `txn`.
Result<Hash> EntryHashAt(const lmdb::Txn& txn, const Ledger& ledger, uint32_t partition,
                         uint64_t sequence) {
  auto v = txn.Get(ledger.tables().entries, EntryKey(partition, sequence));
  if (!v) return Fail(v.error());
  if (!*v) {
    return Fail(Error::DataLoss(
        fmt::format("{}: entry {} of partition {} is missing", ledger.dir(), sequence, partition)));
  }
  return EntryHash(**v);
}

// Whether the first `n` entries of the partition are the same in both ledgers: since
// each entry hashes the one before it, equal hashes at n-1 mean equal prefixes. When
// they differ, bisects to the first sequence that differs.
Result<std::optional<uint64_t>> FirstDifference(const lmdb::Txn& a_txn, const Ledger& a,
                                                const lmdb::Txn& b_txn, const Ledger& b,
                                                uint32_t partition, uint64_t n) {
  if (n == 0) return std::optional<uint64_t>{};
  auto same_at = [&](uint64_t seq) -> Result<bool> {
    auto ha = EntryHashAt(a_txn, a, partition, seq);
    if (!ha) return Fail(ha.error());
    auto hb = EntryHashAt(b_txn, b, partition, seq);
    if (!hb) return Fail(hb.error());
    return *ha == *hb;
  };
  auto last = same_at(n - 1);
  if (!last) return Fail(last.error());
  if (*last) return std::optional<uint64_t>{};
  uint64_t lo = 0, hi = n - 1;  // the answer is in [lo, hi]; hi differs
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    auto same = same_at(mid);
    if (!same) return Fail(same.error());
    if (*same) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return std::optional<uint64_t>{lo};
}

}  // namespace

Result<LedgerSetReport> CheckLedgerSet(const std::vector<SetMember>& members) {
  LedgerSetReport r;
  if (members.empty()) {
    return Fail(Error::InvalidArgument("no ledger directories to check together"));
  }
  std::vector<lmdb::Txn> txns;
  std::map<uint32_t, PartitionHolding> holding;
  size_t reference = 0;  // the member whose partition count the others are compared with
  for (size_t i = 0; i < members.size(); ++i) {
    const Ledger& l = *members[i].ledger;
    uint32_t count = l.partition_count();
    if (count == 0) {
      r.problems.push_back(fmt::format(
          "{} has no recorded partition count: it was never fed by ingest", members[i].name));
    } else if (count > kPartitionCountMax) {
      r.problems.push_back(fmt::format(
          "{} records a partition count of {}, more than any Kafka topic has: it was not "
          "built by ingest",
          members[i].name, count));
    } else if (r.partition_count == 0) {
      r.partition_count = count;
      reference = i;
    } else if (count != r.partition_count) {
      r.problems.push_back(fmt::format(
          "{} was built from a topic of {} partitions, {} from one of {}: not the same topic",
          members[i].name, count, members[reference].name, r.partition_count));
    }
    auto txn = lmdb::Txn::Begin(l.env(), true);
    if (!txn) return Fail(txn.error().Context(members[i].name));
    auto heads = ReadHeads(*txn, l.tables());
    if (!heads) return Fail(heads.error().Context(members[i].name));
    for (const auto& h : *heads) {
      if (h.size == 0) continue;
      auto& ph = holding[h.partition];
      ph.partition = h.partition;
      ph.holders.emplace_back(i, h);
    }
    txns.push_back(std::move(*txn));
  }
  if (!r.ok()) return r;
  // Partitions no ledger holds, named as ranges so that the report stays short.
  for (uint32_t p = 0; p < r.partition_count;) {
    if (holding.count(p)) {
      ++p;
      continue;
    }
    uint32_t last = p;
    while (last + 1 < r.partition_count && !holding.count(last + 1))
      ++last;
    r.problems.push_back(
        last == p ? fmt::format("partition {} of {} is in none of these ledgers: no ingest "
                                "node consumed it",
                                p, r.partition_count)
                  : fmt::format("partitions {} to {} of {} are in none of these ledgers: no "
                                "ingest node consumed them",
                                p, last, r.partition_count));
    p = last + 1;
  }
  for (auto& [p, ph] : holding) {
    if (p >= r.partition_count) {
      r.problems.push_back(
          fmt::format("partition {} lies beyond the partition count {}", p, r.partition_count));
    }
    for (size_t k = 1; k < ph.holders.size(); ++k) {
      if (ph.holders[k].second.size > ph.holders[ph.longest].second.size) ph.longest = k;
    }
    const auto& [li, lh] = ph.holders[ph.longest];
    for (size_t k = 0; k < ph.holders.size(); ++k) {
      if (k == ph.longest) continue;
      const auto& [si, sh] = ph.holders[k];
      auto diff =
          FirstDifference(txns[si], *members[si].ledger, txns[li], *members[li].ledger, p, sh.size);
      if (!diff) return Fail(diff.error());
      if (*diff) {
        r.problems.push_back(fmt::format(
            "partition {}: {} ({} entries) and {} ({} entries) diverge at entry {}: the "
            "shorter chain is not a prefix of the longer, so one of them holds a history "
            "the topic never had",
            p, members[si].name, sh.size, members[li].name, lh.size, **diff));
      }
    }
    r.partitions.push_back(ph);
  }
  return r;
}

}  // namespace g60
