// What every verb of `g60ledger` shares: exit codes, error reporting, signal handling,
// and the flags that locate a configuration, a ledger and a Kafka cluster.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/config.h"
#include "ledger/status.h"
#include "ledger/store.h"

namespace CLI {
class App;
}

namespace g60 {

extern std::atomic<bool> g_stop;  // set by SIGINT and SIGTERM
void InstallSignalHandlers();

// Exit codes: 0 ok, 1 the job found a problem (verify failed, events failed), 2 usage
// or configuration error, 3 an operating error (broker, disk, lock).
inline constexpr int kExitProblem = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitOperating = 3;

// Prints "g60ledger: <error>" and returns the exit code for it.
int Report(const Error& e);

// Writes a verb's output file (`-o FILE`, `--json FILE`) whole or not at all, as `export`
// does: "-" or "" is standard output (flushed, every write checked); a new or regular
// file is written beside it (PATH.tmp), synced and renamed over it; anything else that
// exists (a symlink, a device, a pipe) is written through as it is, never replaced by a
// regular file. A failed write is a ResourceExhausted error naming the target.
Status WriteOutput(const std::string& path, std::string_view text);

// Flags shared by the verbs that read a ledger or talk to Kafka; --config supplies
// defaults, explicit flags win.
struct Common {
  std::string config_path;
  std::string ledger_dir;
  std::string bootstrap;
  std::string topic;
  std::vector<std::string> anchor_files;
  uint64_t map_size_mib = 0;
  std::string metrics_listen;

  void AddLedger(CLI::App* app);
  void AddKafka(CLI::App* app);
  void AddAnchors(CLI::App* app);
  // The configuration with the flags applied; relative paths in the file are relative
  // to the file.
  Result<Config> Load() const;
  Result<std::unique_ptr<Ledger>> OpenLedger(const Config& c, bool writer) const;
};

// The configuration and a read-only ledger, for the verbs that only read.
struct OpenedLedger {
  Config config;
  std::unique_ptr<Ledger> ledger;
};
Result<OpenedLedger> OpenForReading(const Common& common);

// The usage error of a verb that checks signatures and was given no trust anchors: it
// would otherwise report every signed entry as unauthorised, which reads as tampering.
std::optional<Error> MissingAnchors(const Config& c, std::string_view verb);

}  // namespace g60
