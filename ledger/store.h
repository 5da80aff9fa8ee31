// The ledger store: one LMDB environment holding, per Kafka partition, a hash chain of
// entries, the consumed offset, and the business state the rules engine keeps. Every
// append happens in a Batch, one LMDB write transaction: entries, state, heads and
// offsets commit together or not at all (DESIGN.md invariant 1).
//
// Thread safety: a Ledger may be shared by threads; at most one Batch exists at a time
// (LMDB allows one writer). Readers use their own read transactions and never block
// the writer. Across processes, only the holder of the writer lock may write.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/lmdb.h"
#include "ledger/rules.h"
#include "ledger/status.h"

namespace g60 {

struct LedgerOptions {
  std::string dir;
  size_t map_size_bytes = size_t{4} << 30;
  // A writer takes the directory's exclusive writer lock; readers only read.
  bool writer = false;
  // Raw 32-byte Ed25519 public keys trusted as admins in every partition. A writable
  // ledger records them at creation and refuses to open with a different set, since
  // its decisions depend on them.
  std::vector<std::string> trust_anchors;
  // The partition count of the ledger's Kafka topic. A writable ledger records it at
  // creation (0 = record it later, with BindTopic) and refuses to open with
  // another: which partition holds an applicant, and so which chain, depends on it
  // (DESIGN.md "One applicant, one chain"; rule WRONG_PARTITION).
  uint32_t partition_count = 0;
  // A scratch ledger (audit's replay) commits without fsync.
  bool scratch = false;
  // The audit's replay ledger: keeps no Merkle log and no index of its own. The audit
  // checks the original's Merkle log against the entries (verify) and its index against
  // the keys each batch of the replay gives (Batch::TakeIndexKeys), which costs reads
  // instead of writes.
  bool replay_scratch = false;
};

struct PartitionHead {
  uint32_t partition = 0;
  uint64_t size = 0;        // entries in the chain
  Hash head_hash{};         // entry hash of the last entry (zeros when empty)
  int64_t next_offset = 0;  // the Kafka offset to consume next
};

// LMDB named databases ("tables"); docs/formats.md lists their keys and values.
struct Tables {
  MDB_dbi meta, entries, heads, event_ids, keys, pubkeys, applications, approvals, payments, policy,
      catalogs, catalog_blobs, merkle, index, checkpoints, totals;
};

// LMDB key of a stored Merkle subtree: partition u32 || level u8 || index u64 (big-endian).
std::string MerkleKey(uint32_t partition, uint32_t level, uint64_t index);
// The partition's stored perfect subtrees as a merkle::NodeSource, read through `txn`.
std::function<Result<Hash>(uint32_t, uint64_t)> MerkleNodes(const lmdb::Txn& txn,
                                                            const Tables& tables,
                                                            uint32_t partition);

// Key of table "totals": programme || 0x00 || year u16 BE || partition u32 BE.
std::string TotalsKey(std::string_view programme, int year, uint32_t partition);

// Table key of per-partition state: partition u32 BE || id.
std::string PartitionKey(uint32_t partition, std::string_view id);

struct AppendOutcome {
  bool appended = false;  // false: the record's offset was already consumed (redelivery)
  uint64_t sequence = 0;
  Hash entry_hash{};
  ledger::v1::Verdict verdict = ledger::v1::VERDICT_UNSPECIFIED;
  Reason reason = Reason::REASON_NONE;
};

class Ledger;

// One write transaction. Destroying it without Commit() rolls everything back.
class Batch {
 public:
  Batch(Batch&&) = default;
  ~Batch() = default;

  // Decides the record and appends its entry. A record below the partition's next
  // offset was recorded before and is skipped (appended = false).
  Result<AppendOutcome> Append(const Record& record, const Prechecked& pre);
  // Writes the heads of the partitions appended to, so that reads through txn() see them
  // (Commit does it too).
  Status WriteHeads();
  // Writes the heads and commits durably.
  Status Commit();
  // The index keys of the entries appended so far (and not yet taken), sorted. A ledger
  // opened with replay_scratch does not store them: its user must take them before each
  // Commit.
  std::vector<std::string> TakeIndexKeys();
  size_t appended() const { return appended_; }
  // The batch's write transaction, for reads that must see its uncommitted appends.
  const lmdb::Txn& txn() const { return txn_; }
  lmdb::Txn& txn() { return txn_; }
  Ledger& ledger() { return *ledger_; }

 private:
  friend class Ledger;
  Batch(Ledger& ledger, lmdb::Txn txn) : ledger_(&ledger), txn_(std::move(txn)) {}
  Result<PartitionHead*> Head(uint32_t partition);
  Status ApplyEffects(uint32_t partition, const std::vector<Effect>& effects);
  Status AppendMerkleLeaf(uint32_t partition, uint64_t index, const Hash& leaf);
  Status WriteIndex(StateView& state, const ledger::v1::EntryBody& body, const DecodedMessage& d,
                    uint32_t partition, uint64_t sequence);
  Status WriteTotals(const ledger::v1::EntryBody& body, const DecodedMessage& d,
                     uint32_t partition);

  Ledger* ledger_;
  lmdb::Txn txn_;
  std::map<uint32_t, PartitionHead> heads_;                        // touched in this batch
  std::vector<std::pair<std::string, std::string>> new_keys_;      // key id -> public key
  std::vector<std::string> index_keys_;                            // written at Commit, sorted
  std::map<std::string, ledger::v1::ProgrammeYearTotals> totals_;  // written at Commit
  struct MerkleEdge {
    bool known = false;
    uint64_t index = 0;
    Hash hash{};
  };
  std::map<uint32_t, std::vector<MerkleEdge>> merkle_edges_;  // last subtree per level
  size_t appended_ = 0;
};

class Ledger {
 public:
  static Result<std::unique_ptr<Ledger>> Open(const LedgerOptions& options);
  ~Ledger();

  Result<Batch> BeginBatch();

  // Heads of every partition, in partition order.
  Result<std::vector<PartitionHead>> Heads() const;
  Result<std::optional<PartitionHead>> Head(uint32_t partition) const;

  // The topic's partition count recorded in the ledger, 0 while none is. Applicant
  // events are decided against it (rule WRONG_PARTITION), so appends need one.
  uint32_t partition_count() const { return partition_count_.load(); }
  // Records the Kafka topic the ledger consumes and its partition count, each if none is
  // recorded yet; fails with FailedPrecondition naming both when it recorded another
  // topic name or count. Writers only; ingest calls it before it consumes anything.
  Status BindTopic(std::string_view topic, uint32_t count);

  // The trust anchors the ledger recorded at creation (meta "anchors": raw 32-byte
  // Ed25519 public keys, sorted), which a writer must be opened with. DataLoss when the
  // record is missing or not a whole number of keys.
  Result<std::vector<std::string>> RecordedAnchors() const;
  // The Kafka topic recorded by the first ingest (meta "topic"), "" while none is.
  Result<std::string> RecordedTopic() const;

  // Public key of a key id ever granted in any partition, or an anchor; "" if unknown.
  // Thread-safe; used by the parallel signature pre-check.
  std::string PublicKeyOf(std::string_view key_id) const;

  const lmdb::Env& env() const { return env_; }
  const Tables& tables() const { return tables_; }
  const std::vector<std::string>& trust_anchors() const { return anchors_; }
  bool replay_scratch() const { return replay_scratch_; }
  // (key id, public key) of each trust anchor, computed once.
  const std::vector<std::pair<std::string, std::string>>& anchor_keys() const {
    return anchor_keys_;
  }
  const std::string& dir() const { return dir_; }
  CatalogCache& catalogs() const { return catalogs_; }

 private:
  friend class Batch;
  Ledger(lmdb::Env env, std::string dir) : env_(std::move(env)), dir_(std::move(dir)) {}
  Status Init(const LedgerOptions& options);

  lmdb::Env env_;
  std::string dir_;
  Tables tables_{};
  std::vector<std::string> anchors_;
  std::vector<std::pair<std::string, std::string>> anchor_keys_;
  int lock_fd_ = -1;
  bool replay_scratch_ = false;
  std::atomic<uint32_t> partition_count_{0};
  mutable std::shared_mutex keys_mu_;
  std::unordered_map<std::string, std::string> public_keys_;  // key id -> public key
  mutable CatalogCache catalogs_;
};

// Heads of every partition as seen by `txn`, in partition order.
Result<std::vector<PartitionHead>> ReadHeads(const lmdb::Txn& txn, const Tables& tables);

// Reads a partition head record from the heads table value.
Result<PartitionHead> DecodeHead(uint32_t partition, std::string_view value);
std::string EncodeHead(const PartitionHead& head);

// StateView over a transaction, for one partition; used by Batch and by replays.
class TxnStateView final : public StateView {
 public:
  TxnStateView(const lmdb::Txn& txn, const Tables& tables, uint32_t partition,
               const std::vector<std::pair<std::string, std::string>>& anchors,
               CatalogCache& catalogs, uint32_t partition_count)
      : txn_(txn),
        t_(tables),
        partition_(partition),
        anchors_(anchors),
        catalogs_(catalogs),
        partition_count_(partition_count) {}
  Result<std::optional<ledger::v1::KeyState>> Key(std::string_view key_id) override;
  Result<std::optional<uint64_t>> EventClaimedAt(std::string_view applicant_id,
                                                 std::string_view event_id) override;
  Result<std::optional<ledger::v1::ApplicationState>> Application(
      std::string_view applicant_id, std::string_view event_id) override;
  Result<std::optional<ledger::v1::ApprovalState>> Approval(std::string_view applicant_id,
                                                            std::string_view event_id) override;
  Result<std::optional<ledger::v1::PaymentState>> Payment(std::string_view applicant_id,
                                                          std::string_view event_id) override;
  Result<std::optional<ledger::v1::PolicyRecord>> Policy(std::string_view key) override;
  Result<std::shared_ptr<const CatalogIndex>> Catalog() override;
  uint32_t PartitionCount() override { return partition_count_; }

 private:
  template <typename Msg>
  Result<std::optional<Msg>> Load(MDB_dbi dbi, std::string_view id, const char* what);
  const lmdb::Txn& txn_;
  const Tables& t_;
  uint32_t partition_;
  const std::vector<std::pair<std::string, std::string>>& anchors_;  // key id, public key
  CatalogCache& catalogs_;
  uint32_t partition_count_;
};

}  // namespace g60
