// A ledger's totals, computed from its entries: what `g60ledger summary` prints.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ledger/catalog.h"
#include "ledger/store.h"

namespace g60 {

struct ProgrammeTotals {
  uint64_t applications = 0;
  uint64_t approvals = 0;
  int64_t approved_fen = 0;
  int64_t paid_fen = 0;
  int64_t clawed_back_fen = 0;
  int64_t largest_approval_fen = 0;
};

struct LedgerSummary {
  uint64_t entries = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  std::map<std::string, uint64_t> rejected_by_reason;  // reason name -> count
  std::map<std::string, uint64_t> entries_by_type;     // event type name -> count
  std::map<std::string, ProgrammeTotals> programmes;   // programme id -> totals
  ProgrammeTotals total;
  std::vector<PartitionHead> heads;
  // The catalogue in force in the first partition (nullptr before any), for caps.
  std::shared_ptr<const CatalogIndex> catalog;
};

// Reads every entry once in one read transaction (a consistent snapshot).
Result<LedgerSummary> Summarize(const Ledger& ledger);

}  // namespace g60
