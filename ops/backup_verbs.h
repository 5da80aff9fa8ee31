// The operator's verbs for backups: `backup` (a verified copy of a live ledger) and
// `restore` (a backup put into place, never over a ledger in use). ledger/backup.h does
// the work; docs/operations.md, "Backups and restores", is the procedure.
#pragma once

#include <optional>
#include <string>

#include "ops/common.h"

namespace CLI {
class App;
}

namespace g60 {

class BackupVerbs {
 public:
  BackupVerbs(CLI::App& app, Common& common);
  // Runs the verb the command line named, if it is one of these.
  std::optional<int> Run();

 private:
  int Backup();
  int Restore();

  Common& common_;
  CLI::App *backup_ = nullptr, *restore_ = nullptr;
  std::string to_, from_;
  bool compact_ = true, json_ = false, replace_ = false;
  int64_t threads_ = -1;  // --threads: verifying threads; -1: [ingest] verify_threads
};

}  // namespace g60
