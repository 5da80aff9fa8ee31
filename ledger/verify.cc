#include "ledger/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/ordered_workers.h"

namespace g60 {

const char* FindingName(Finding f) {
  switch (f) {
    case Finding::kAltered:
      return "altered";
    case Finding::kRemoved:
      return "removed";
    case Finding::kReordered:
      return "reordered";
    case Finding::kAdded:
      return "added";
    case Finding::kUnreadable:
      return "unreadable";
    case Finding::kNotAuthorised:
      return "not authorised";
    case Finding::kLayout:
      return "layout";
  }
  return "altered";
}

std::string Problem::ToString() const {
  return fmt::format("partition {} entry {}: {}{}{}", partition, sequence, what,
                     since.empty() ? "" : ". ", since);
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
          Report({UINT32_MAX,
                  0,
                  "the heads table holds a key the ledger never writes (not 4 bytes): it was "
                  "altered outside the ledger",
                  Finding::kLayout,
                  {}});
          continue;
        }
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(cur->key().data()));
        auto h = DecodeHead(p, cur->value());
        if (!h) {
          Report({p,
                  0,
                  fmt::format("the head record of the partition was altered and cannot be read "
                              "({})",
                              h.error().message()),
                  Finding::kAltered,
                  {}});
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
        Report({UINT32_MAX,
                0,
                "the entries table holds a key the ledger never writes (not 12 bytes): it was "
                "altered outside the ledger",
                Finding::kLayout,
                {}});
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
          Report({p,
                  0,
                  fmt::format("all {} entries of the partition were removed (its head record "
                              "still counts them)",
                              h.size),
                  Finding::kRemoved,
                  {}});
        continue;
      }
      const PartitionHead& r = it->second;
      if (broken_.contains(p)) continue;  // the chain's own break is the first problem
      const std::string evidence = fmt::format(
          "head record says {} entries ending in {}, the chain has {} ending in {}", h.size,
          HexEncode(AsBytes(h.head_hash)), r.size, HexEncode(AsBytes(r.head_hash)));
      if (r.size < h.size) {
        Report({p,
                r.size,
                fmt::format("{} removed from the end of the chain ({})",
                            EntryRange(r.size, h.size - 1, "was", "were"), evidence),
                Finding::kRemoved,
                {}});
      } else if (r.size > h.size) {
        Report({p,
                h.size,
                fmt::format("{} added after the last entry the ledger recorded, outside the "
                            "ledger ({})",
                            EntryRange(h.size, r.size - 1, "was", "were"), evidence),
                Finding::kAdded,
                {}});
      } else if (r.head_hash != h.head_hash) {
        Report({p,
                r.size == 0 ? 0 : r.size - 1,
                fmt::format("the last entry was replaced, or the head record rewritten ({})",
                            evidence),
                Finding::kAltered,
                {}});
      } else if (h.next_offset < r.next_offset) {
        Report({p,
                r.size - 1,
                fmt::format("the head record was altered: its next Kafka offset {} is below the "
                            "last entry's offset + 1 = {}",
                            h.next_offset, r.next_offset),
                Finding::kAltered,
                {}});
      }
    }
    for (const auto& [p, r] : recomputed_) {
      if (!stored.contains(p))
        Report({p,
                0,
                "the partition's entries were added outside the ledger, or its head record "
                "removed: it has entries but no head record",
                Finding::kAdded,
                {}});
    }
    G60_TRY(CheckAgainstCheckpoints(stored));
    if (report_.first_problem) G60_TRY(AddSince(*report_.first_problem));
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
        Report({p,
                0,
                "the partition's latest checkpoint was altered: it is not a readable signed "
                "checkpoint (" +
                    cp.error().message() + ")",
                Finding::kAltered,
                {}});
        continue;
      }
      auto it = recomputed_.find(p);
      uint64_t size = it == recomputed_.end() ? 0 : it->second.size;
      if (cp->size > size) {
        ReportShorterThanSigned(p, size, *cp);
        continue;
      }
      auto root = merkle::Root(MerkleNodes(txn_, ledger_.tables(), p), cp->size);
      if (!root) return Fail(root.error());
      if (*root != cp->root) {
        Report({p,
                cp->size - 1,
                fmt::format("entries 0 to {} were altered after the ledger signed them (its "
                            "checkpoint of {} entries signed root {}; the entries give {})",
                            cp->size - 1, cp->size, HexEncode(AsBytes(cp->root)),
                            HexEncode(AsBytes(*root))),
                Finding::kAltered,
                {}});
      }
    }
    return {};
  }

  // The chain holds fewer entries than the ledger signed. Whether the entries it still
  // holds are the ones signed decides what to say: the Merkle log kept beside them still
  // giving the signed root (every chain leaf was checked against that log) proves them,
  // and so does an earlier checkpoint whose root they give; otherwise entries were removed
  // somewhere and the chain rebuilt after them, and the finding says no more than that.
  void ReportShorterThanSigned(uint32_t p, uint64_t size, const note::Checkpoint& signed_cp) {
    const uint64_t n = signed_cp.size;
    auto log_root = merkle::Root(MerkleNodes(txn_, ledger_.tables(), p), n);
    if (log_root && *log_root == signed_cp.root) {
      Report({p,
              size,
              fmt::format("{} removed after the ledger signed {} (its checkpoint of {} entries; "
                          "the chain now holds {})",
                          EntryRange(size, n - 1, "was", "were"), size + 1 == n ? "it" : "them", n,
                          size),
              Finding::kRemoved,
              {}});
      return;
    }
    // The largest earlier checkpoint the chain can still be compared with.
    std::optional<note::Checkpoint> earlier;
    (void)ForEachCheckpoint(txn_, ledger_.tables(), [&](const StoredCheckpoint& c) -> Status {
      if (c.partition != p || c.size > size || c.size == 0) return {};
      const std::string& text = c.note;
      auto body_end = text.find("\n\n");
      if (body_end == std::string::npos) return {};
      if (auto parsed = note::ParseCheckpoint(std::string_view(text).substr(0, body_end + 1)))
        earlier = *parsed;
      return {};
    });
    if (earlier) {
      auto root = merkle::Root(MerkleNodes(txn_, ledger_.tables(), p), earlier->size);
      if (!root || *root != earlier->root) {
        Report({p,
                earlier->size - 1,
                fmt::format("the chain was rewritten: it holds {} entries where the ledger "
                            "signed {}, and entries 0 to {} no longer give the root of the "
                            "checkpoint of {} entries the ledger signed before; entries at or "
                            "before entry {} were altered or removed",
                            size, n, earlier->size - 1, earlier->size, earlier->size - 1),
                Finding::kAltered,
                {}});
        return;
      }
      Report({p,
              earlier->size,
              fmt::format("entries after entry {} were removed and the chain rebuilt: entries 0 "
                          "to {} are the ones the ledger signed in its checkpoint of {} entries, "
                          "but the chain now holds {} where the ledger signed {}",
                          earlier->size - 1, earlier->size - 1, earlier->size, size, n),
              Finding::kRemoved,
              {}});
      return;
    }
    Report({p,
            0,
            fmt::format("the chain was rewritten: it holds {} entries where the ledger signed "
                        "{}, and its entries no longer give the signed root; entries at or "
                        "before entry {} were removed or altered (no earlier checkpoint tells "
                        "which)",
                        size, n, size),
            Finding::kRemoved,
            {}});
  }

  static std::string EntryRange(uint64_t first, uint64_t last, const char* one, const char* many) {
    if (first == last) return fmt::format("entry {} {}", first, one);
    return fmt::format("entries {} to {} {}", first, last, many);
  }

  // Since when the partition cannot be trusted: the last entry before the finding that
  // still reads (and its Kafka time), and whether a checkpoint the ledger signed covered
  // the entry found, which dates the change after that signature.
  Status AddSince(Problem& problem) {
    if (problem.partition == UINT32_MAX || !problem.since.empty()) return {};
    std::string since;
    if (problem.sequence == 0) {
      since = "Nothing in the partition before it can be relied on";
    } else {
      const uint64_t last = problem.sequence - 1;
      auto v = txn_.Get(ledger_.tables().entries, EntryKey(problem.partition, last));
      if (!v) return Fail(v.error());
      since = fmt::format("The chain is intact up to entry {}", last);
      if (*v) {
        if (auto e = DecodeEntry(**v)) {
          since += fmt::format(" (recorded {})", FormatCstTime(e->body.source().timestamp_ms()));
        }
      }
    }
    auto covering =
        CheckpointCovering(txn_, ledger_.tables(), problem.partition, problem.sequence + 1);
    if (!covering) return Fail(covering.error());
    if (*covering) {
      since += fmt::format(
          "; the ledger's checkpoint of {} entries covered entry {}, so the change was made "
          "after that checkpoint was signed",
          (*covering)->size, problem.sequence);
    } else {
      since +=
          fmt::format("; no checkpoint signed by the ledger covers entry {} yet", problem.sequence);
    }
    problem.since = std::move(since);
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
        if (auto problem = CheckEntry(p, seq, cur.value(), head, last_offset, keys)) {
          Report(std::move(*problem));
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

  // Checks one entry and advances the recomputed head; returns what is wrong with it.
  std::optional<Problem> CheckEntry(uint32_t p, uint64_t seq, std::string_view bytes,
                                    PartitionHead& head, int64_t& last_offset,
                                    std::map<std::string, KeyInfo>& keys) {
    auto found = [&](uint64_t at, Finding f, std::string what) {
      return std::optional<Problem>(Problem{p, at, std::move(what), f, {}});
    };
    if (seq != head.size) {
      return found(head.size, Finding::kRemoved,
                   fmt::format("{} removed: the chain goes on at entry {}",
                               EntryRange(head.size, seq - 1, "was", "were"), seq));
    }
    auto decoded = DecodeEntry(bytes);
    if (!decoded) {
      return found(seq, Finding::kUnreadable,
                   fmt::format("entry {} was damaged or altered and cannot be read ({})", seq,
                               decoded.error().message()));
    }
    const EntryHeader& h = decoded->header;
    const auto& body = decoded->body;
    if (h.partition != p) {
      return found(seq, Finding::kReordered,
                   fmt::format("entry {} holds the bytes of partition {} entry {}: an entry was "
                               "copied from another partition",
                               seq, h.partition, h.sequence));
    }
    if (h.sequence != seq) {
      return found(seq, Finding::kReordered,
                   fmt::format("entry {} holds the bytes of entry {}: entries were reordered, or "
                               "one was copied over another",
                               seq, h.sequence));
    }
    if (h.prev_hash != head.head_hash) {
      return found(seq, Finding::kAltered,
                   fmt::format("entry {} does not follow entry {}: entry {} was replaced, or the "
                               "link to it altered (the entry records previous hash {}, entry {} "
                               "hashes to {})",
                               seq, seq - 1, seq - 1, HexEncode(AsBytes(h.prev_hash)), seq - 1,
                               HexEncode(AsBytes(head.head_hash))));
    }
    if (body.source().partition() != static_cast<int32_t>(p)) {
      return found(seq, Finding::kAltered,
                   fmt::format("entry {} was altered: its Kafka record names partition {}", seq,
                               body.source().partition()));
    }
    if (body.source().offset() <= last_offset) {
      return found(seq, Finding::kReordered,
                   fmt::format("entry {} was altered or reordered: its Kafka offset {} does not "
                               "follow the previous entry's {}",
                               seq, body.source().offset(), last_offset));
    }
    last_offset = body.source().offset();
    head.size = seq + 1;
    head.head_hash = EntryHash(bytes);
    head.next_offset = last_offset + 1;
    if (std::string why = CheckMerkle(p, seq, head.head_hash); !why.empty()) {
      return found(seq, Finding::kAltered,
                   fmt::format("entry {}, or the Merkle log kept beside the entries, was altered "
                               "after it was appended ({})",
                               seq, why));
    }
    if (body.verdict() == ledger::v1::VERDICT_ACCEPTED) {
      if (!options_.check_signatures) return std::nullopt;
      if (auto why = CheckAccepted(p, seq, body, keys)) return found(seq, why->first, why->second);
      return std::nullopt;
    }
    if (body.verdict() != ledger::v1::VERDICT_REJECTED) {
      return found(
          seq, Finding::kAltered,
          fmt::format("entry {} was altered: its verdict is neither accepted nor rejected", seq));
    }
    return std::nullopt;
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

  // An accepted entry's event against the keys granted before it: what is wrong, or
  // nothing (its signature is checked later, on the workers).
  std::optional<std::pair<Finding, std::string>> CheckAccepted(
      uint32_t p, uint64_t seq, const ledger::v1::EntryBody& body,
      std::map<std::string, KeyInfo>& keys) {
    using Why = std::optional<std::pair<Finding, std::string>>;
    DecodedMessage d = DecodeMessage(body.value());
    if (!d.ok()) {
      return Why({Finding::kAltered,
                  fmt::format("entry {} is recorded as accepted, but its event cannot be read: "
                              "the entry was altered ({})",
                              seq, d.detail)});
    }
    if (d.event.event_id() != body.event_id() || d.type != body.event_type()) {
      return Why({Finding::kAltered,
                  fmt::format("entry {} was altered: the event id or type it records differs "
                              "from its signed event's",
                              seq)});
    }
    auto it = keys.find(d.signed_event.key_id());
    if (it == keys.end()) {
      const bool admin_event = RequiredRole(d.type, v1::LEVEL_UNSPECIFIED) == v1::ROLE_ADMIN;
      return Why({Finding::kNotAuthorised,
                  fmt::format("entry {} is recorded as accepted, but its signer's key {} was "
                              "never granted before it: the entry was added or altered outside "
                              "the ledger's rules{}",
                              seq, PrintableBytes(d.signed_event.key_id()),
                              admin_event ? ", or the trust anchors given are not the ones the "
                                            "ledger was created with"
                                          : "")});
    }
    const KeyInfo& key = it->second;
    v1::Level level = d.type == EventType::EVENT_TYPE_APPROVAL ? d.event.approval().level()
                                                               : v1::LEVEL_UNSPECIFIED;
    if (key.revoked) {
      return Why({Finding::kNotAuthorised,
                  fmt::format("entry {} is recorded as accepted, but its signer's key {} had "
                              "been revoked before it",
                              seq, it->first)});
    }
    if (key.role != RequiredRole(d.type, level)) {
      return Why({Finding::kNotAuthorised,
                  fmt::format("entry {} is recorded as accepted, but its {} event is signed by "
                              "a {} key, which may not sign it",
                              seq, EventTypeName(d.type), RoleName(key.role))});
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
      if (auto s = FlushSignatures(false); !s)
        return Why({Finding::kUnreadable, s.error().message()});
    }
    return std::nullopt;
  }

  // Hands the pending signatures to the workers; with `all`, waits for every chunk.
  // Results are collected as they come back; failures are reported.
  Status FlushSignatures(bool all = true) {
    auto collect = [&](const SigChunk& c) {
      for (size_t i = 0; i < c.jobs.size(); ++i) {
        if (!c.valid[i]) {
          Report({c.jobs[i].partition,
                  c.jobs[i].sequence,
                  fmt::format("entry {} is recorded as accepted, but its event's Ed25519 "
                              "signature does not verify: the event was altered after it was "
                              "signed, or forged",
                              c.jobs[i].sequence),
                  Finding::kAltered,
                  {}});
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
