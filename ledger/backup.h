// Backups of a live ledger and their restore (docs/operations.md, "Backups and restores").
//
// A ledger directory holds one LMDB environment: `data.mdb` (every table), `lock.mdb`
// (LMDB's table of readers, rebuilt by the first process that opens the environment) and
// `writer.lock` (the ingest's flock). Only data.mdb is data, so a backup is one directory
// holding one data.mdb. A file copy (`cp`) of data.mdb taken while ingest commits mixes
// pages of different transactions and may not open at all; a backup is instead written by
// LMDB itself (mdb_env_copyfd2) inside a read transaction, which sees one committed state
// while the writer goes on committing.
//
// The copy is staged in `DEST.partial` beside DEST, flushed to disk (fsync), opened and
// verified as a ledger (ledger/verify.h: entries, hash links, heads, the Merkle log, the
// latest checkpoints, and every accepted entry's signature, signer and role replayed from
// the trust anchors), and only then renamed to DEST in one step, so DEST is either absent
// or a whole, verified copy. Anything that fails removes the staged copy.
//
// The trust anchors the copy is verified with are those the ledger recorded when it was
// created (a backup verifies with nothing but itself); anchors given by the configuration
// must be that same set, since ingest refuses to write a ledger with other anchors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"
#include "ledger/verify.h"

namespace g60 {

struct BackupOptions {
  std::string ledger_dir;  // the ledger (or a backup of one) to copy; only read
  // Where the copy goes: a path that does not exist yet, whose parent directory does, and
  // that is not inside ledger_dir. Created by an atomic rename at the end.
  std::string dest_dir;
  // MDB_CP_COMPACT: copy only the pages in use, renumbered (smaller, costs more CPU);
  // otherwise every page up to the last in use, free ones included (docs/operations.md
  // has the measurements behind the default).
  bool compact = true;
  // Raw 32-byte Ed25519 keys from the configuration; when given they must be the set the
  // ledger recorded at creation. Empty: nothing to compare with.
  std::vector<std::string> configured_anchors;
  unsigned verify_threads = 0;              // 0: one per core
  size_t map_size_bytes = size_t{4} << 30;  // LMDB map of the readers opened here
};

struct BackupPartition {
  uint32_t partition = 0;
  uint64_t size = 0;             // entries in the chain
  Hash head_hash{};              // entry hash of the last entry
  int64_t next_offset = 0;       // the Kafka offset ingest consumes next from this copy
  Hash merkle_root{};            // RFC 9162 MTH of the partition's log at `size`
  uint64_t checkpoint_size = 0;  // size of the latest signed checkpoint; 0: none
};

struct BackupReport {
  std::string ledger_dir;
  std::string dest_dir;
  bool compact = true;
  std::string topic;                        // "" while no ingest has run
  uint32_t partition_count = 0;             // 0 while no ingest has run
  std::vector<std::string> anchor_key_ids;  // recorded in the ledger, sorted
  bool anchors_compared = false;            // configured anchors were given and match
  std::vector<BackupPartition> partitions;  // in partition order
  uint64_t entries = 0;                     // verified
  uint64_t signatures = 0;                  // verified
  uint64_t ledger_bytes = 0;                // the ledger's data.mdb when the copy began
  uint64_t bytes = 0;                       // the copy's data.mdb
  double copy_seconds = 0;                  // copy and fsync
  double verify_seconds = 0;                // opening and verifying the copy
  std::vector<std::string> not_copied;      // other files found in ledger_dir
  bool removed_interrupted = false;         // DEST.partial of an interrupted run was cleared
  bool same_filesystem = false;             // DEST is on the ledger's filesystem (st_dev)
  std::optional<Problem> problem;           // the copy does not verify: nothing was kept
};

// Copies, verifies and renames into place as described above. An Error when the copy
// could not be made: InvalidArgument for DEST (exists, inside the ledger, no parent) or
// for configured anchors that are not the ledger's; NotFound when ledger_dir holds no
// ledger; ResourceExhausted when DEST's disk is full; FailedPrecondition when another
// backup is writing DEST.partial; what LMDB and the file system say otherwise. A copy
// that does not verify is not an Error: the report's `problem` names the first bad entry,
// and DEST was not created.
Result<BackupReport> BackupLedger(const BackupOptions& options);

struct RestoreOptions {
  std::string backup_dir;  // a directory written by BackupLedger
  std::string ledger_dir;  // where the ledger is to be
  // ledger_dir exists: move it aside to `ledger_dir.replaced-<UTC time>` (kept, never
  // deleted: a damaged ledger is evidence) instead of refusing.
  bool replace = false;
  std::vector<std::string> configured_anchors;
  unsigned verify_threads = 0;
  size_t map_size_bytes = size_t{4} << 30;
};

struct RestoreReport {
  BackupReport copy;        // the copy now in ledger_dir, as verified
  std::string replaced_to;  // where the ledger that was in ledger_dir went; "" if none
};

// Copies the backup into ledger_dir as BackupLedger copies a ledger (staged in
// `ledger_dir.partial`, verified, renamed into place), after checking that no process has
// ledger_dir open: FailedPrecondition naming the pid when an ingest holds its writer lock
// or any process has its LMDB environment open (checked again, with the writer lock held,
// just before the switch). InvalidArgument when ledger_dir exists and `replace` is off.
// A backup that does not verify leaves ledger_dir untouched and sets `copy.problem`.
Result<RestoreReport> RestoreLedger(const RestoreOptions& options);

}  // namespace g60
