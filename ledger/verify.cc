#include "ledger/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/ordered_workers.h"

namespace g60 {

std::string Problem::ToString() const {
  return fmt::format("partition {} entry {}: {}", partition, sequence, what);
}

namespace {

constexpr size_t kSignatureChunk = 256;  // signatures handed to a worker at a time

struct SigJob {
  uint32_t partition;
  uint64_t sequence;
  std::string public_key;
  v1::SignedEvent signed_event;
};

struct SigChunk {
  std::vector<SigJob> jobs;
  std::vector<char> valid;
};

struct KeyInfo {
  std::string public_key;
  v1::Role role;
  bool revoked;
};

class Verifier {
 public:
  Verifier(const Ledger& ledger, const VerifyOptions& options, const lmdb::Txn& txn)
      : ledger_(ledger),
        options_(options),
        txn_(txn),
        threads_(options.threads ? options.threads
                                 : std::max(1u, std::thread::hardware_concurrency())),
        // The walk (this thread) reads and hashes; the workers check signatures meanwhile.
        checkers_(threads_, 4 * threads_, [](SigChunk& c) {
          c.valid.resize(c.jobs.size());
          for (size_t i = 0; i < c.jobs.size(); ++i) {
            const auto& se = c.jobs[i].signed_event;
            c.valid[i] = VerifyDetached(c.jobs[i].public_key, se.signature(), kEventSignaturePrefix,
                                        se.event());
          }
        }) {}

  Result<VerifyReport> Run() {
    // Heads as stored, to compare with what the entries give.
    std::map<uint32_t, PartitionHead> stored;
    {
      auto cur = lmdb::Cursor::Open(txn_, ledger_.tables().heads);
      if (!cur) return Fail(cur.error());
      for (auto ok = cur->First();; ok = cur->Next()) {
        if (!ok) return Fail(ok.error());
        if (!*ok) break;
        if (cur->key().size() != 4) {
          Report({UINT32_MAX, 0, "heads table has a key that is not 4 bytes"});
          continue;
        }
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(cur->key().data()));
        auto h = DecodeHead(p, cur->value());
        if (!h) {
          Report({p, 0, h.error().message()});
          continue;
        }
        stored[p] = *h;
      }
    }
    auto cur = lmdb::Cursor::Open(txn_, ledger_.tables().entries);
    if (!cur) return Fail(cur.error());
    auto ok = cur->First();
    while (true) {
      if (!ok) return Fail(ok.error());
      if (!*ok) break;
      if (cur->key().size() != 12) {
        Report({UINT32_MAX, 0, "entries table has a key that is not 12 bytes"});
        ok = cur->Next();
        continue;
      }
      uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(cur->key().data()));
      auto walked = WalkPartition(*cur, p);
      if (!walked) return Fail(walked.error());
      ok = *walked;
    }
    G60_TRY(FlushSignatures());
    // Compare recomputed heads with stored ones.
    for (const auto& [p, h] : stored) {
      auto it = recomputed_.find(p);
      if (it == recomputed_.end()) {
        if (h.size != 0)
          Report({p, 0, fmt::format("head says {} entries; none are stored", h.size)});
        continue;
      }
      const PartitionHead& r = it->second;
      if (broken_.contains(p)) continue;  // the chain's own break is the first problem
      if (r.size != h.size || r.head_hash != h.head_hash) {
        Report({p, r.size,
                fmt::format("head record says {} entries ending in {}, the chain has {} ending in "
                            "{} (entries removed or appended outside the ledger)",
                            h.size, HexEncode(AsBytes(h.head_hash)), r.size,
                            HexEncode(AsBytes(r.head_hash)))});
      } else if (h.next_offset < r.next_offset) {
        Report({p, r.size - 1,
                fmt::format("head's next offset {} is below the last entry's "
                            "offset + 1 = {}",
                            h.next_offset, r.next_offset)});
      }
    }
    for (const auto& [p, r] : recomputed_) {
      if (!stored.contains(p)) Report({p, 0, "partition has entries but no head record"});
    }
    G60_TRY(CheckAgainstCheckpoints(stored));
    report_.entries = entries_;
    report_.signatures = signatures_;
    for (auto& [p, r] : recomputed_) {
      PartitionHead h = r;
      if (auto it = stored.find(p); it != stored.end()) h.next_offset = it->second.next_offset;
      report_.heads.push_back(h);
    }
    return report_;
  }

 private:
  // The chain against the latest checkpoint the ledger signed of each partition: a chain
  // shorter than a signed size lost entries (removed, with the head rewritten to match),
  // and the root the entries give at the signed size must be the signed root. Checked
  // from the note's text; whose key signed it is the audit's question (--ledger-key).
  Status CheckAgainstCheckpoints(const std::map<uint32_t, PartitionHead>& stored) {
    std::set<uint32_t> partitions;
    for (const auto& [p, h] : stored)
      partitions.insert(p);
    for (const auto& [p, r] : recomputed_)
      partitions.insert(p);
    for (uint32_t p : partitions) {
      if (broken_.contains(p)) continue;
      auto latest = LatestCheckpoint(txn_, ledger_.tables(), p);
      if (!latest) return Fail(latest.error());
      if (!*latest) continue;
      auto text = note::UnverifiedText((*latest)->note);
      auto cp = text ? note::ParseCheckpoint(*text)
                     : Result<note::Checkpoint>(Fail(text.error().ToError()));
      if (!cp) {
        Report({p, 0,
                "its latest stored checkpoint is not a readable signed checkpoint: " +
                    cp.error().message()});
        continue;
      }
      auto it = recomputed_.find(p);
      uint64_t size = it == recomputed_.end() ? 0 : it->second.size;
      if (cp->size > size) {
        Report({p, size,
                fmt::format("the ledger signed a checkpoint of {} entries, but the chain holds {}: "
                            "entries {} to {} were removed after they were signed",
                            cp->size, size, size, cp->size - 1)});
        continue;
      }
      auto root = merkle::Root(MerkleNodes(txn_, ledger_.tables(), p), cp->size);
      if (!root) return Fail(root.error());
      if (*root != cp->root) {
        Report({p, cp->size - 1,
                fmt::format("the checkpoint of {} entries signed root {}, but the entries give {}: "
                            "the first {} entries were changed after they were signed",
                            cp->size, HexEncode(AsBytes(cp->root)), HexEncode(AsBytes(*root)),
                            cp->size)});
      }
    }
    return {};
  }

  void Report(Problem problem) {
    auto& first = report_.first_problem;
    if (!first || std::tie(problem.partition, problem.sequence) <
                      std::tie(first->partition, first->sequence)) {
      first = std::move(problem);
    }
  }

  // Walks one partition's entries from the cursor's position; leaves the cursor on the
  // first entry of the next partition. Returns whether the cursor is on an entry.
  Result<bool> WalkPartition(lmdb::Cursor& cur, uint32_t p) {
    PartitionHead& head = recomputed_[p];
    head.partition = p;
    std::map<std::string, KeyInfo> keys;
    for (const auto& a : options_.trust_anchors)
      keys[KeyIdOf(a)] = {a, v1::ROLE_ADMIN, false};
    bool broken = false;
    int64_t last_offset = -1;
    while (true) {
      std::string_view key = cur.key();
      if (key.size() != 12 || GetU32BE(reinterpret_cast<const unsigned char*>(key.data())) != p) {
        return true;
      }
      uint64_t seq = GetU64BE(reinterpret_cast<const unsigned char*>(key.data()) + 4);
      if (!broken) {
        if (std::string why = CheckEntry(p, seq, cur.value(), head, last_offset, keys);
            !why.empty()) {
          Report({p, seq, why});
          broken = true;  // later links of this partition cannot be trusted
          broken_.insert(p);
        }
      }
      ++entries_;
      if (options_.progress && entries_ % 65536 == 0) options_.progress(entries_);
      auto ok = cur.Next();
      if (!ok) return Fail(ok.error());
      if (!*ok) return false;
    }
  }

  // Checks one entry and advances the recomputed head; returns why it is bad, or "".
  std::string CheckEntry(uint32_t p, uint64_t seq, std::string_view bytes, PartitionHead& head,
                         int64_t& last_offset, std::map<std::string, KeyInfo>& keys) {
    if (seq != head.size) {
      return fmt::format("expected entry {} here: an entry is missing or out of place", head.size);
    }
    auto decoded = DecodeEntry(bytes);
    if (!decoded) return decoded.error().message();
    const EntryHeader& h = decoded->header;
    const auto& body = decoded->body;
    if (h.partition != p || h.sequence != seq) {
      return fmt::format("entry bytes say partition {} entry {}: moved from elsewhere", h.partition,
                         h.sequence);
    }
    if (h.prev_hash != head.head_hash) {
      return fmt::format("previous-hash field {} does not match the previous entry's hash {}",
                         HexEncode(AsBytes(h.prev_hash)), HexEncode(AsBytes(head.head_hash)));
    }
    if (body.source().partition() != static_cast<int32_t>(p)) {
      return fmt::format("entry body names partition {}", body.source().partition());
    }
    if (body.source().offset() <= last_offset) {
      return fmt::format("Kafka offset {} does not follow the previous entry's {}",
                         body.source().offset(), last_offset);
    }
    last_offset = body.source().offset();
    head.size = seq + 1;
    head.head_hash = EntryHash(bytes);
    head.next_offset = last_offset + 1;
    if (std::string why = CheckMerkle(p, seq, head.head_hash); !why.empty()) return why;
    if (body.verdict() == ledger::v1::VERDICT_ACCEPTED) {
      return options_.check_signatures ? CheckAccepted(p, seq, body, keys) : "";
    }
    if (body.verdict() != ledger::v1::VERDICT_REJECTED)
      return "verdict is neither accepted nor rejected";
    return "";
  }

  // Recomputes the subtrees this leaf completes (from the partition's right edge, kept
  // in frontier_) and compares them with the stored Merkle log.
  std::string CheckMerkle(uint32_t p, uint64_t seq, const Hash& leaf) {
    if (seq == 0) frontier_.assign(64, Hash{});
    merkle::NodeSource edge = [this](uint32_t level, uint64_t) -> Result<Hash> {
      return frontier_[level];
    };
    auto writes = merkle::AppendLeaf(edge, seq, leaf);
    if (!writes) return writes.error().message();
    for (const auto& w : *writes) {
      frontier_[w.level] = w.hash;
      auto stored = txn_.Get(ledger_.tables().merkle, MerkleKey(p, w.level, w.index));
      if (!stored) return stored.error().message();
      if (!*stored || **stored != AsBytes(w.hash)) {
        return fmt::format("Merkle subtree ({}, {}) is {} in the log; the entries give {}", w.level,
                           w.index, *stored ? HexEncode(**stored) : std::string("missing"),
                           HexEncode(AsBytes(w.hash)));
      }
    }
    return "";
  }

  std::string CheckAccepted(uint32_t p, uint64_t seq, const ledger::v1::EntryBody& body,
                            std::map<std::string, KeyInfo>& keys) {
    DecodedMessage d = DecodeMessage(body.value());
    if (!d.ok()) return fmt::format("accepted entry's event does not decode: {}", d.detail);
    if (d.event.event_id() != body.event_id() || d.type != body.event_type()) {
      return "entry's event id or type differs from its signed event";
    }
    auto it = keys.find(d.signed_event.key_id());
    if (it == keys.end()) {
      return fmt::format("accepted event is signed by key {}, not granted before it",
                         d.signed_event.key_id());
    }
    const KeyInfo& key = it->second;
    v1::Level level = d.type == EventType::EVENT_TYPE_APPROVAL ? d.event.approval().level()
                                                               : v1::LEVEL_UNSPECIFIED;
    if (key.revoked) return fmt::format("accepted event is signed by revoked key {}", it->first);
    if (key.role != RequiredRole(d.type, level)) {
      return fmt::format("accepted {} event is signed by a {} key", EventTypeName(d.type),
                         RoleName(key.role));
    }
    sig_jobs_.push_back(SigJob{p, seq, key.public_key, std::move(d.signed_event)});
    if (d.type == EventType::EVENT_TYPE_KEY_GRANT) {
      const auto& g = d.event.key_grant();
      keys.emplace(KeyIdOf(g.public_key()), KeyInfo{g.public_key(), g.role(), false});
    } else if (d.type == EventType::EVENT_TYPE_KEY_REVOKE) {
      if (auto k = keys.find(d.event.key_revoke().key_id()); k != keys.end())
        k->second.revoked = true;
    }
    if (sig_jobs_.size() >= kSignatureChunk) {
      if (auto s = FlushSignatures(false); !s) return s.error().message();
    }
    return "";
  }

  // Hands the pending signatures to the workers; with `all`, waits for every chunk.
  // Results are collected as they come back; failures are reported.
  Status FlushSignatures(bool all = true) {
    auto collect = [&](const SigChunk& c) {
      for (size_t i = 0; i < c.jobs.size(); ++i) {
        if (!c.valid[i]) {
          Report({c.jobs[i].partition, c.jobs[i].sequence,
                  "accepted event's Ed25519 signature does not verify"});
        }
      }
      signatures_ += c.jobs.size();
    };
    while (auto done = checkers_.Next(std::chrono::milliseconds(0)))
      collect(*done);
    if (!sig_jobs_.empty()) {
      while (checkers_.in_flight() >= 4 * threads_) {
        if (auto done = checkers_.Next(std::chrono::milliseconds(100))) collect(*done);
      }
      checkers_.Submit(SigChunk{std::move(sig_jobs_), {}});
      sig_jobs_ = {};
    }
    while (all && checkers_.in_flight() > 0) {
      if (auto done = checkers_.Next(std::chrono::milliseconds(100))) collect(*done);
    }
    return {};
  }

  const Ledger& ledger_;
  const VerifyOptions& options_;
  const lmdb::Txn& txn_;
  unsigned threads_;
  OrderedWorkers<SigChunk> checkers_;
  std::map<uint32_t, PartitionHead> recomputed_;
  std::set<uint32_t> broken_;   // partitions whose chain broke
  std::vector<Hash> frontier_;  // the right edge of the partition's Merkle tree, per level
  std::vector<SigJob> sig_jobs_;
  uint64_t entries_ = 0;
  uint64_t signatures_ = 0;
  VerifyReport report_;
};

}  // namespace

Result<VerifyReport> VerifyLedger(const Ledger& ledger, const VerifyOptions& options) {
  CryptoInit();
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Fail(txn.error());
  Verifier v(ledger, options, *txn);
  return v.Run();
}

}  // namespace g60
