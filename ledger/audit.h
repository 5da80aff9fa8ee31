// `g60ledger audit`: the full audit. It trusts nothing stored beside the entries:
//   1. chain: every entry's layout and hash link, the heads, and every stored Merkle
//      subtree recomputed from the entries (VerifyLedger without signatures);
//   2. checkpoints: every checkpoint the ledger stored, and every copy an auditor kept,
//      has a valid signature by the ledger key and names the root of the log at its size;
//   3. replay: every record is decided again from scratch by the rules engine in a
//      scratch ledger (signatures, signers, roles, key validity, every policy rule), and
//      the entry it gives must equal the stored one byte for byte;
//   4. state: every state and index table of the replay equals the stored one.
// It stops at the first discrepancy and names it.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ledger/note.h"
#include "ledger/store.h"
#include "ledger/verify.h"

namespace g60 {

struct AuditOptions {
  std::vector<std::string> trust_anchors;  // the auditor's own copy, raw public keys
  // The checkpoint key; when absent, the key the ledger itself names is used, and the
  // report says so (an auditor should bring their own copy).
  std::optional<note::Verifier> ledger_key;
  std::vector<std::string> external_checkpoints;  // signed notes kept by the auditor
  std::string scratch_dir;                        // where the replay is built (emptied)
  unsigned threads = 0;                           // 0: one per core
  // Called now and then with the stage ("chain", "checkpoints", "replay", "state").
  std::function<void(std::string_view stage, uint64_t done, uint64_t total)> progress;
};

struct AuditReport {
  uint64_t entries = 0;
  uint64_t accepted = 0;  // accepted entries re-decided, so signatures and roles re-checked
  uint64_t checkpoints = 0;
  uint64_t external_checkpoints = 0;
  std::string ledger_key;               // verifier key text used for checkpoints
  bool ledger_key_from_ledger = false;  // taken from the ledger, not given by the auditor
  std::vector<PartitionHead> heads;
  std::string stage;  // the stage of the first discrepancy
  std::optional<Problem> first_discrepancy;
  double seconds = 0;
  std::map<std::string, double> stage_seconds;  // time spent in each stage
  // CPU time of the replay: signature checks on the worker threads, and deciding and
  // appending into the scratch ledger on the replaying thread.
  double replay_check_cpu_seconds = 0;
  double replay_apply_cpu_seconds = 0;
  bool ok() const { return !first_discrepancy; }
  nlohmann::json ToJson() const;
};

// An Error means the audit could not run (unreadable ledger, no scratch space); a
// ledger that fails the audit gives a report with first_discrepancy set.
Result<AuditReport> AuditLedger(const Ledger& ledger, const AuditOptions& options);

}  // namespace g60
