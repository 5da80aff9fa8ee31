// Several ledgers built from one topic by ingest nodes that share its partitions (one
// consumer group, each node its own ledger): do they, together, hold the topic, and do
// they agree wherever they overlap? A partition that moved from one node to another
// after a crash is held by both, the old holder's chain stopping where the new one's
// went on: the shorter chain must be a prefix of the longer, entry for entry.
//
// The check reads the stored entries only (each ledger's own integrity is verify's and
// audit's job, run on each directory); it needs no Kafka.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ledger/store.h"

namespace g60 {

struct SetMember {
  std::string name;      // how reports name the ledger (its directory)
  const Ledger* ledger;  // not owned
};

struct PartitionHolding {
  uint32_t partition = 0;
  std::vector<std::pair<size_t, PartitionHead>> holders;  // member index, its head there
  size_t longest = 0;                                     // member index of the longest chain
};

struct LedgerSetReport {
  uint32_t partition_count = 0;  // the count every member recorded
  std::vector<PartitionHolding> partitions;
  std::vector<std::string> problems;  // in words an auditor reads; empty when consistent
  bool ok() const { return problems.empty(); }
};

// Problems reported: members that recorded different partition counts (or none), a
// partition no member holds, two chains of one partition that diverge (named with the
// first sequence at which they differ, found by bisection over the entry hashes). An
// Error means a ledger could not be read at all.
Result<LedgerSetReport> CheckLedgerSet(const std::vector<SetMember>& members);

}  // namespace g60
