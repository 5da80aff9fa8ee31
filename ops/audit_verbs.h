// The auditor's verbs: checkpoint, prove, trace, verify-proof, verify-consistency and
// audit (docs/audit.md). verify-proof and verify-consistency with --proof read no ledger.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ledger/checkpoint.h"
#include "ops/common.h"

namespace CLI {
class App;
}

namespace g60 {

// The checkpoint signing key named by [checkpoint] key_file; nullopt when none is set.
// A key file of another role than "ledger" is refused.
Result<std::optional<CheckpointKey>> LoadCheckpointKey(const Config& c);

class AuditVerbs {
 public:
  AuditVerbs(CLI::App& app, Common& common);
  // Runs the verb the command line named, if it is one of these.
  std::optional<int> Run();

 private:
  int Checkpoint();
  int CheckpointHistory(const lmdb::Txn& txn, const Tables& t, const note::Verifier& key);
  int Prove();
  int Trace();
  int VerifyProof();
  int VerifyConsistency();
  int Audit();
  int VerifySet();
  Result<note::Verifier> LedgerKey(const Config& c) const;

  Common& common_;
  CLI::App *checkpoint_, *prove_, *trace_, *verify_proof_, *verify_consistency_, *audit_,
      *verify_set_;
  std::string ledger_key_;  // --ledger-key: verifier key text or a file holding it
  std::string id_, at_, out_, file_, old_, new_, proof_, scratch_, json_;
  std::optional<std::string> applicant_;  // --applicant of prove and trace
  std::vector<std::string> checkpoints_;
  std::vector<std::string> set_dirs_;  // verify-set
  int64_t partition_ = -1;
  std::optional<uint64_t> size_;  // checkpoint --size
  bool issue_ = false, verifier_only_ = false, all_ = false;
};

}  // namespace g60
