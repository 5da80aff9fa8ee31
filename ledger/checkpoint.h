// Signed checkpoints: the ledger's signed statement of each partition's Merkle log at a
// size, in the C2SP tlog-checkpoint format signed as a C2SP signed note with the ledger's
// own Ed25519 key (DESIGN.md invariant 5). Stored in table "checkpoints" (key partition
// u32 BE || size u64 BE, value the note text) in the same transaction as the entries they
// cover, so a stored checkpoint always describes entries that are on disk.
//
// The ledger never signs two inconsistent checkpoints: before signing size n it proves
// the log at n consistent with its latest checkpoint (RFC 9162 consistency proof, checked
// with the verifier of merkle_verify.h against that checkpoint's signed root), and it
// refuses to sign at all if the stored checkpoints were signed by another key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ledger/note.h"
#include "ledger/store.h"

namespace g60 {

// The checkpoint signing key. `name` is the ledger's name, e.g. "g60ledger.example/songjiang":
// the signature's key name, and the stem of every partition's origin.
struct CheckpointKey {
  std::string name;
  std::string secret_key;  // 64-byte libsodium Ed25519 secret key
  std::string public_key;  // 32 bytes
  note::Verifier verifier() const { return note::Verifier{name, public_key}; }
};

// Origin line of a partition's checkpoints: "<name>/<partition>".
std::string CheckpointOrigin(std::string_view name, uint32_t partition);
// The partition an origin names, when it is "<name>/<decimal partition>".
Result<uint32_t> PartitionOfOrigin(std::string_view origin, std::string_view name);

// A checkpoint note handed to us (a bundle's link, an auditor's file, a note the ledger
// stored): opened with the ledger's key alone (note::OpenNote, c2sp.org/signed-note), its
// text read as a tlog-checkpoint (note::ParseCheckpoint), its origin "<key name>/<P>" and,
// when `partition` is given, P that partition. Refusals are kCheckpointText and
// kWrongOrigin beside the note's own, each saying what is wrong in words.
struct OpenedCheckpoint {
  note::Checkpoint checkpoint;
  uint32_t partition = 0;
};
note::Checked<OpenedCheckpoint> OpenCheckpoint(std::string_view note, const note::Verifier& key,
                                               std::optional<uint32_t> partition = std::nullopt);

struct StoredCheckpoint {
  uint32_t partition = 0;
  uint64_t size = 0;
  std::string note;  // the signed note, as stored and published
};

// The verifier key text the ledger's checkpoints are signed with (meta "checkpoint_key"),
// or nullopt before the first checkpoint.
Result<std::optional<std::string>> CheckpointVerifierKey(const lmdb::Txn& txn, const Tables& t);
Result<std::optional<StoredCheckpoint>> LatestCheckpoint(const lmdb::Txn& txn, const Tables& t,
                                                         uint32_t partition);
// The first checkpoint of the partition whose size is at least `size` (the one a proof of
// entry size - 1 is made against), or nullopt.
Result<std::optional<StoredCheckpoint>> CheckpointCovering(const lmdb::Txn& txn, const Tables& t,
                                                           uint32_t partition, uint64_t size);
// Every stored checkpoint in (partition, size) order.
Status ForEachCheckpoint(const lmdb::Txn& txn, const Tables& t,
                         const std::function<Status(const StoredCheckpoint&)>& fn);

// The history of one partition: its stored checkpoints of size greater than
// `after_size`, smallest first, at most `limit` (the ledger keeps every checkpoint it
// signed; an auditor who missed one takes it from here).
Result<std::vector<StoredCheckpoint>> CheckpointsOf(const lmdb::Txn& txn, const Tables& t,
                                                    uint32_t partition, uint64_t after_size,
                                                    size_t limit);
// The partition's checkpoint of exactly `size`. NotFound when there is none, naming
// what there is: how many, the smallest and largest sizes, and the two nearest `size`.
Result<StoredCheckpoint> CheckpointAt(const lmdb::Txn& txn, const Tables& t, uint32_t partition,
                                      uint64_t size);

// A stored checkpoint as an auditor reads it, and whether it holds: the note opens with
// `key` (C2SP signed-note), its origin is `<key name>/<partition>`, its size is the
// stored one, and its root is the Merkle log's root at that size (RFC 9162 §2.1.1).
struct CheckpointView {
  StoredCheckpoint stored;
  std::optional<Hash> root;  // the signed root, when the note opened and parsed
  // The Kafka timestamp (epoch ms) of the last entry the checkpoint covers (entry
  // size - 1). The note carries no time and the ledger does not record when it signed,
  // so this is the time the checkpoint can be placed by: it was signed at or after it.
  int64_t last_entry_timestamp_ms = 0;
  std::string problem;  // why it does not hold; empty when it does
  bool verified() const { return problem.empty(); }
  // {"partition", "size", "root" (base64), "last_entry_timestamp_ms", "last_entry_time"
  // (China Standard Time), "verified", "problem", "note"}; docs/queries.md.
  nlohmann::json ToJson() const;
};
Result<CheckpointView> ViewCheckpoint(const lmdb::Txn& txn, const Tables& t,
                                      const StoredCheckpoint& stored, const note::Verifier& key);

// Signs and stores a checkpoint of the partition's log as written so far in `batch`,
// unless the latest checkpoint already has that size (then nullopt).
Result<std::optional<StoredCheckpoint>> IssueCheckpoint(Batch& batch, uint32_t partition,
                                                        const CheckpointKey& key);

// When checkpoints are due: every `every_entries` new entries of a partition, or at most
// `every` after a partition's first entry not yet covered.
class Checkpointer {
 public:
  using Clock = std::chrono::steady_clock;
  Checkpointer(CheckpointKey key, uint64_t every_entries, std::chrono::milliseconds every);

  // Issues the checkpoints due, in `batch` before it commits; `force` issues one for
  // every partition with entries not yet covered (shutdown, catching up).
  Result<std::vector<StoredCheckpoint>> IssueDue(Batch& batch, bool force);
  const CheckpointKey& key() const { return key_; }
  std::chrono::milliseconds every() const { return every_; }

 private:
  CheckpointKey key_;
  uint64_t every_entries_;
  std::chrono::milliseconds every_;
  std::map<uint32_t, Clock::time_point> uncovered_since_;  // first time seen uncovered
};

}  // namespace g60
