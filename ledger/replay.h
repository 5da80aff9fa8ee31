// Replay: rebuilds a ledger from another ledger's entries, record by record, through the
// same rules. Because the ledger is a pure function of its records and trust anchors
// (DESIGN.md invariant 2), the copy's entries, heads and every state table must equal
// the original's byte for byte; CompareLedgers says where they differ.
#pragma once

#include <optional>
#include <string>

#include "ledger/store.h"

namespace g60 {

// The Kafka record an entry was made from, as it was delivered.
Record RecordOf(const ledger::v1::EntryBody& body);

// Appends every entry's source record of `source` to `target` (an empty writable
// ledger with the same trust anchors), one partition after another.
Status ReplayLedger(const Ledger& source, Ledger& target, uint32_t batch_entries = 2000);

// Compares every table of two ledgers that replay must reproduce (all but the
// checkpoints); returns the first difference, or nullopt. When `b` is a replay_scratch
// ledger, which keeps no Merkle log and no index, those two tables are not compared:
// the audit checks them against the entries itself.
Result<std::optional<std::string>> CompareLedgers(const Ledger& a, const Ledger& b);

}  // namespace g60
