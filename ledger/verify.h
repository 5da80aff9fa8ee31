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

// What an auditor is told about a damaged ledger: which entry, what happened to it
// (altered, removed, reordered, added, unreadable, or accepted without authority), in
// words, with the technical evidence after them, and since when the chain can no longer
// be trusted (the last intact entry and its time, the checkpoint that covered it).
enum class Finding {
  kAltered,        // an entry's bytes, or the log or head kept beside them, were changed
  kRemoved,        // entries that were written are gone
  kReordered,      // an entry stands where another belongs (swapped, moved or copied)
  kAdded,          // entries written outside the ledger
  kUnreadable,     // an entry cannot be decoded at all
  kNotAuthorised,  // recorded as accepted, but no granted key could have signed it
  kLayout,         // a table holds a key or record the ledger never writes
};
const char* FindingName(Finding f);  // "altered", "removed", ...

struct Problem {
  Problem() = default;
  Problem(uint32_t p, uint64_t seq, std::string what_, Finding f = Finding::kAltered,
          std::string since_ = {})
      : partition(p), sequence(seq), what(std::move(what_)), finding(f), since(std::move(since_)) {}
  uint32_t partition = 0;
  uint64_t sequence = 0;
  std::string what;  // the finding in words, then the evidence
  Finding finding = Finding::kAltered;
  std::string since;  // "the chain is intact up to entry 4 (recorded ...) ..."; may be empty
  // "partition P entry N: <what>" and, when known, " <since>".
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
