// `g60ledger verify`: re-reads every entry of every partition and re-checks the byte
// layout, every hash link, the heads, every stored subtree of the partition's Merkle
// log, and the signature, signer and role of every
// accepted event (replaying key grants and revocations from the chain itself, with
// only the trust anchors given). Signatures are checked on all cores.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ledger/store.h"

namespace g60 {

struct VerifyOptions {
  std::vector<std::string> trust_anchors;               // raw public keys; the auditor's own copy
  unsigned threads = 0;                                 // 0: one per core
  std::function<void(uint64_t entries_done)> progress;  // called now and then
  // Off: the layout, hash chain and heads only (the benchmark's chain-only figure).
  bool check_signatures = true;
};

struct Problem {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  std::string what;
  std::string ToString() const;
};

struct VerifyReport {
  uint64_t entries = 0;
  uint64_t signatures = 0;
  std::vector<PartitionHead> heads;      // as recomputed from the entries
  std::optional<Problem> first_problem;  // lowest (partition, sequence) found
  bool ok() const { return !first_problem; }
};

// An Error means the ledger could not be read at all; a damaged ledger gives a report
// with first_problem set.
Result<VerifyReport> VerifyLedger(const Ledger& ledger, const VerifyOptions& options);

}  // namespace g60
