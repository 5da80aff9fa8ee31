#include "ledger/checkpoint.h"

#include <fmt/format.h>

#include <charconv>

#include "ledger/bytes.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"
#include "ledger/query.h"

namespace g60 {

namespace {

constexpr std::string_view kMetaKey = "checkpoint_key";

std::string CheckpointKeyOf(uint32_t partition, uint64_t size) {
  std::string k;
  PutU32BE(k, partition);
  PutU64BE(k, size);
  return k;
}

Result<StoredCheckpoint> Decode(std::string_view key, std::string_view value) {
  if (key.size() != 12) return Fail(Error::DataLoss("checkpoints table key is not 12 bytes"));
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  return StoredCheckpoint{GetU32BE(p), GetU64BE(p + 4), std::string(value)};
}

}  // namespace

std::string CheckpointOrigin(std::string_view name, uint32_t partition) {
  return fmt::format("{}/{}", name, partition);
}

Result<uint32_t> PartitionOfOrigin(std::string_view origin, std::string_view name) {
  if (origin.size() <= name.size() + 1 || origin.substr(0, name.size()) != name ||
      origin[name.size()] != '/') {
    return Fail(Error::InvalidArgument(fmt::format(
        "the checkpoint's origin \"{}\" is not a partition of ledger {} (\"{}/<partition>\")",
        origin, name, name)));
  }
  std::string_view digits = origin.substr(name.size() + 1);
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
  if (ec != std::errc() || end != digits.data() + digits.size() ||
      (digits.size() > 1 && digits[0] == '0')) {
    return Fail(Error::InvalidArgument(fmt::format(
        "the checkpoint's origin \"{}\" does not end in a partition number (decimal, no leading "
        "zeros)",
        origin)));
  }
  return p;
}

note::Checked<OpenedCheckpoint> OpenCheckpoint(std::string_view note, const note::Verifier& key,
                                               std::optional<uint32_t> partition) {
  auto opened = note::OpenNote(note, std::span<const note::Verifier>(&key, 1));
  if (!opened) return std::unexpected(std::move(opened.error()));
  auto cp = note::ParseCheckpoint(opened->text);
  if (!cp)
    return std::unexpected(note::Refusal{note::Problem::kCheckpointText, cp.error().message()});
  auto p = PartitionOfOrigin(cp->origin, key.name);
  if (!p) return std::unexpected(note::Refusal{note::Problem::kWrongOrigin, p.error().message()});
  if (partition && *p != *partition) {
    return std::unexpected(note::Refusal{
        note::Problem::kWrongOrigin,
        fmt::format("the checkpoint is of partition {} (origin \"{}\"), not of partition {}", *p,
                    cp->origin, *partition)});
  }
  return OpenedCheckpoint{std::move(*cp), *p};
}

Result<std::optional<std::string>> CheckpointVerifierKey(const lmdb::Txn& txn, const Tables& t) {
  auto v = txn.Get(t.meta, kMetaKey);
  if (!v) return Fail(v.error());
  if (!*v) return std::optional<std::string>{};
  return std::optional<std::string>(std::string(**v));
}

Result<std::optional<StoredCheckpoint>> CheckpointCovering(const lmdb::Txn& txn, const Tables& t,
                                                           uint32_t partition, uint64_t size) {
  auto cur = lmdb::Cursor::Open(txn, t.checkpoints);
  if (!cur) return Fail(cur.error());
  auto ok = cur->Seek(CheckpointKeyOf(partition, size));
  if (!ok) return Fail(ok.error());
  if (!*ok) return std::optional<StoredCheckpoint>{};
  auto c = Decode(cur->key(), cur->value());
  if (!c) return Fail(c.error());
  if (c->partition != partition) return std::optional<StoredCheckpoint>{};
  return std::optional<StoredCheckpoint>(std::move(*c));
}

Result<std::optional<StoredCheckpoint>> LatestCheckpoint(const lmdb::Txn& txn, const Tables& t,
                                                         uint32_t partition) {
  auto cur = lmdb::Cursor::Open(txn, t.checkpoints);
  if (!cur) return Fail(cur.error());
  // The last key of the partition is just before the first key of the next one.
  Result<bool> ok =
      partition == UINT32_MAX ? cur->Last() : cur->Seek(CheckpointKeyOf(partition + 1, 0));
  if (!ok) return Fail(ok.error());
  ok = *ok ? cur->Prev() : cur->Last();
  if (!ok) return Fail(ok.error());
  if (!*ok) return std::optional<StoredCheckpoint>{};
  auto c = Decode(cur->key(), cur->value());
  if (!c) return Fail(c.error());
  if (c->partition != partition) return std::optional<StoredCheckpoint>{};
  return std::optional<StoredCheckpoint>(std::move(*c));
}

Status ForEachCheckpoint(const lmdb::Txn& txn, const Tables& t,
                         const std::function<Status(const StoredCheckpoint&)>& fn) {
  auto cur = lmdb::Cursor::Open(txn, t.checkpoints);
  if (!cur) return Fail(cur.error());
  for (auto ok = cur->First();; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    auto c = Decode(cur->key(), cur->value());
    if (!c) return Fail(c.error());
    G60_TRY(fn(*c));
  }
  return {};
}

Result<std::vector<StoredCheckpoint>> CheckpointsOf(const lmdb::Txn& txn, const Tables& t,
                                                    uint32_t partition, uint64_t after_size,
                                                    size_t limit) {
  std::vector<StoredCheckpoint> out;
  if (after_size == UINT64_MAX || limit == 0) return out;
  auto cur = lmdb::Cursor::Open(txn, t.checkpoints);
  if (!cur) return Fail(cur.error());
  for (auto ok = cur->Seek(CheckpointKeyOf(partition, after_size + 1)); out.size() < limit;
       ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    auto c = Decode(cur->key(), cur->value());
    if (!c) return Fail(c.error());
    if (c->partition != partition) break;
    out.push_back(std::move(*c));
  }
  return out;
}

Result<StoredCheckpoint> CheckpointAt(const lmdb::Txn& txn, const Tables& t, uint32_t partition,
                                      uint64_t size) {
  // One pass over the partition's checkpoints (a few hundred at most for a partition of
  // millions of entries at the default interval) finds it or what to name instead.
  uint64_t count = 0, first = 0, last = 0, below = 0, above = 0;
  auto cur = lmdb::Cursor::Open(txn, t.checkpoints);
  if (!cur) return Fail(cur.error());
  for (auto ok = cur->Seek(CheckpointKeyOf(partition, 0));; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    auto c = Decode(cur->key(), cur->value());
    if (!c) return Fail(c.error());
    if (c->partition != partition) break;
    if (c->size == size) return std::move(*c);
    if (count++ == 0) first = c->size;
    last = c->size;
    if (c->size < size) below = c->size;
    if (c->size > size && above == 0) above = c->size;
  }
  if (count == 0) {
    return Fail(Error::NotFound(fmt::format("partition {} has no checkpoint", partition)));
  }
  if (count == 1) {
    return Fail(Error::NotFound(
        fmt::format("partition {} has no checkpoint of size {}: it has one, of size {}", partition,
                    size, first)));
  }
  std::string nearest = below && above ? fmt::format("the nearest are {} and {}", below, above)
                                       : fmt::format("the nearest is {}", below ? below : above);
  return Fail(Error::NotFound(
      fmt::format("partition {} has no checkpoint of size {}: it has {} checkpoints, sizes {} to "
                  "{}; {}",
                  partition, size, count, first, last, nearest)));
}

Result<CheckpointView> ViewCheckpoint(const lmdb::Txn& txn, const Tables& t,
                                      const StoredCheckpoint& stored, const note::Verifier& key) {
  CheckpointView v;
  v.stored = stored;
  if (stored.size > 0) {
    auto bytes = txn.Get(t.entries, EntryKey(stored.partition, stored.size - 1));
    if (!bytes) return Fail(bytes.error());
    if (!*bytes) {
      v.problem =
          fmt::format("the ledger has no entry {} that the checkpoint covers", stored.size - 1);
      return v;
    }
    auto entry = DecodeEntry(**bytes);
    if (!entry) return Fail(entry.error());
    v.last_entry_timestamp_ms = entry->body.source().timestamp_ms();
  }
  auto text = note::Open(stored.note, key);
  if (!text) {
    v.problem = text.error().message();
    return v;
  }
  auto cp = note::ParseCheckpoint(*text);
  if (!cp) {
    v.problem = cp.error().message();
    return v;
  }
  v.root = cp->root;
  if (cp->origin != CheckpointOrigin(key.name, stored.partition)) {
    v.problem = fmt::format("its origin is \"{}\", not \"{}\"", cp->origin,
                            CheckpointOrigin(key.name, stored.partition));
  } else if (cp->size != stored.size) {
    v.problem = fmt::format("it signs size {} but is stored as size {}", cp->size, stored.size);
  } else {
    auto at = merkle::Root(MerkleNodes(txn, t, stored.partition), cp->size);
    if (!at) return Fail(at.error());
    if (*at != cp->root) v.problem = "the signed root is not the log's root at that size";
  }
  return v;
}

nlohmann::json CheckpointView::ToJson() const {
  return nlohmann::json{
      {"partition", stored.partition},
      {"size", stored.size},
      {"root", root ? nlohmann::json(Base64Encode(AsBytes(*root))) : nlohmann::json(nullptr)},
      {"last_entry_timestamp_ms", last_entry_timestamp_ms},
      {"last_entry_time", FormatCst(last_entry_timestamp_ms)},
      {"verified", verified()},
      {"problem", problem},
      {"note", stored.note}};
}

Result<std::optional<StoredCheckpoint>> IssueCheckpoint(Batch& batch, uint32_t partition,
                                                        const CheckpointKey& key) {
  const Tables& t = batch.ledger().tables();
  lmdb::Txn& txn = batch.txn();
  G60_TRY(batch.WriteHeads());
  std::string verifier = note::VerifierKey(key.verifier());
  auto stored_key = CheckpointVerifierKey(txn, t);
  if (!stored_key) return Fail(stored_key.error());
  if (*stored_key && **stored_key != verifier) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "this ledger's checkpoints are signed by {}, not by the configured key {}; a ledger "
        "keeps one checkpoint key so that auditors' copies stay comparable",
        **stored_key, verifier)));
  }
  auto head_v = txn.Get(t.heads, CheckpointKeyOf(partition, 0).substr(0, 4));
  if (!head_v) return Fail(head_v.error());
  if (!*head_v) return std::optional<StoredCheckpoint>{};
  auto head = DecodeHead(partition, **head_v);
  if (!head) return Fail(head.error());
  auto latest = LatestCheckpoint(txn, t, partition);
  if (!latest) return Fail(latest.error());
  if (*latest && (*latest)->size >= head->size) {
    if ((*latest)->size > head->size) {
      return Fail(Error::DataLoss(fmt::format(
          "partition {} has {} entries but a checkpoint of size {}: the log lost entries",
          partition, head->size, (*latest)->size)));
    }
    return std::optional<StoredCheckpoint>{};
  }
  auto nodes = MerkleNodes(txn, t, partition);
  auto root = merkle::Root(nodes, head->size);
  if (!root) return Fail(root.error());
  if (*latest) {
    // Prove the new tree extends the one already signed before signing it.
    auto opened = OpenCheckpoint((*latest)->note, key.verifier(), partition);
    if (!opened) {
      return Fail(Error::DataLoss(fmt::format("reading partition {}'s latest checkpoint: {}",
                                              partition, opened.error().message)));
    }
    const note::Checkpoint& old = opened->checkpoint;
    auto proof = merkle::ConsistencyProof(nodes, old.size, head->size);
    if (!proof) return Fail(proof.error());
    if (auto ok = merkle::VerifyConsistency(old.size, head->size, old.root, *root, *proof); !ok) {
      return Fail(Error::DataLoss(fmt::format(
          "refusing to sign partition {} at size {}: the log is not consistent with the "
          "checkpoint already signed at size {} ({})",
          partition, head->size, old.size, ok.error().message())));
    }
  }
  note::Checkpoint cp;
  cp.origin = CheckpointOrigin(key.name, partition);
  cp.size = head->size;
  cp.root = *root;
  auto signed_note = note::Sign(note::FormatCheckpoint(cp), key.name, key.secret_key);
  if (!signed_note) return Fail(signed_note.error());
  if (!*stored_key) G60_TRY(txn.Put(t.meta, kMetaKey, verifier));
  G60_TRY(txn.Put(t.checkpoints, CheckpointKeyOf(partition, head->size), *signed_note,
                  MDB_NOOVERWRITE));
  return std::optional<StoredCheckpoint>(StoredCheckpoint{partition, head->size, *signed_note});
}

Checkpointer::Checkpointer(CheckpointKey key, uint64_t every_entries,
                           std::chrono::milliseconds every)
    : key_(std::move(key)), every_entries_(std::max<uint64_t>(1, every_entries)), every_(every) {}

Result<std::vector<StoredCheckpoint>> Checkpointer::IssueDue(Batch& batch, bool force) {
  G60_TRY(batch.WriteHeads());
  auto heads = ReadHeads(batch.txn(), batch.ledger().tables());
  if (!heads) return Fail(heads.error());
  std::vector<StoredCheckpoint> issued;
  auto now = Clock::now();
  for (const auto& h : *heads) {
    auto latest = LatestCheckpoint(batch.txn(), batch.ledger().tables(), h.partition);
    if (!latest) return Fail(latest.error());
    uint64_t covered = *latest ? (*latest)->size : 0;
    if (h.size <= covered) {
      uncovered_since_.erase(h.partition);
      continue;
    }
    auto since = uncovered_since_.try_emplace(h.partition, now).first->second;
    if (!force && h.size - covered < every_entries_ && now - since < every_) continue;
    auto c = IssueCheckpoint(batch, h.partition, key_);
    if (!c) return Fail(c.error());
    if (*c) issued.push_back(std::move(**c));
    uncovered_since_.erase(h.partition);
  }
  return issued;
}

}  // namespace g60
