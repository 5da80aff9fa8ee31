#include "ledger/audit.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/cpu_clock.h"
#include "ledger/crypto.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ledger/index.h"
#include "ledger/merkle.h"
#include "ledger/ordered_workers.h"
#include "ledger/replay.h"

namespace g60 {

nlohmann::json AuditReport::ToJson() const {
  nlohmann::json j;
  j["ok"] = ok();
  j["entries"] = entries;
  j["accepted_entries_redecided"] = accepted;
  j["checkpoints"] = checkpoints;
  j["external_checkpoints"] = external_checkpoints;
  j["ledger_key"] = ledger_key;
  j["ledger_key_from_ledger"] = ledger_key_from_ledger;
  j["seconds"] = seconds;
  j["stage_seconds"] = stage_seconds;
  j["replay_cpu_seconds"] = {{"signature_checks", replay_check_cpu_seconds},
                             {"decide_and_append", replay_apply_cpu_seconds}};
  j["heads"] = nlohmann::json::array();
  for (const auto& h : heads) {
    j["heads"].push_back({{"partition", h.partition},
                          {"size", h.size},
                          {"head_hash", HexEncode(AsBytes(h.head_hash))}});
  }
  if (first_discrepancy) {
    j["first_discrepancy"] = {{"stage", stage},
                              {"partition", first_discrepancy->partition},
                              {"sequence", first_discrepancy->sequence},
                              {"what", first_discrepancy->what}};
  } else {
    j["first_discrepancy"] = nullptr;
  }
  return j;
}

namespace {

using Clock = std::chrono::steady_clock;

// Says how a replayed entry differs from the stored one, in the terms of its decision.
std::string DescribeDifference(std::string_view stored, std::string_view replayed) {
  auto a = DecodeEntry(stored);
  auto b = DecodeEntry(replayed);
  if (!a || !b) return "the stored entry differs from the replayed one";
  const auto& x = a->body;
  const auto& y = b->body;
  auto decision = [](const ledger::v1::EntryBody& e) {
    return fmt::format("{} {}{}",
                       e.verdict() == ledger::v1::VERDICT_ACCEPTED ? "ACCEPTED" : "REJECTED",
                       ReasonName(e.reason()), e.detail().empty() ? "" : " (" + e.detail() + ")");
  };
  if (x.verdict() != y.verdict() || x.reason() != y.reason()) {
    return fmt::format("the ledger recorded {}, the rules decide {}", decision(x), decision(y));
  }
  if (x.detail() != y.detail()) {
    return fmt::format("detail \"{}\" stored, \"{}\" on replay", x.detail(), y.detail());
  }
  if (x.amount_fen() != y.amount_fen()) {
    return fmt::format("amount {} stored, {} on replay", FormatFen(x.amount_fen()),
                       FormatFen(y.amount_fen()));
  }
  if (x.programme() != y.programme()) {
    return fmt::format("programme {} stored, {} on replay", x.programme(), y.programme());
  }
  if (x.catalog_hash() != y.catalog_hash()) return "the catalogue in force differs";
  if (x.effects_size() != y.effects_size()) return "the recorded effects differ";
  return "the stored entry's bytes differ from the replayed entry's";
}

class Auditor {
 public:
  Auditor(const Ledger& ledger, const AuditOptions& options, AuditReport& report)
      : ledger_(ledger), o_(options), r_(report) {
    threads_ = o_.threads ? o_.threads : std::max(1u, std::thread::hardware_concurrency());
  }

  void Progress(std::string_view stage, uint64_t done, uint64_t total) {
    if (o_.progress) o_.progress(stage, done, total);
  }
  bool Discrepancy(std::string_view stage, Problem p) {
    r_.stage = std::string(stage);
    r_.first_discrepancy = std::move(p);
    return false;
  }

  // 1. Layout, hash links, heads and Merkle subtrees.
  Result<bool> Chain() {
    VerifyOptions v;
    v.trust_anchors = o_.trust_anchors;
    v.threads = threads_;
    v.check_signatures = false;  // the replay re-decides every signature below
    v.progress = [this](uint64_t done) { Progress("chain", done, total_); };
    auto report = VerifyLedger(ledger_, v);
    if (!report) return Fail(report.error());
    r_.heads = report->heads;
    r_.entries = report->entries;
    if (report->first_problem) return Discrepancy("chain", *report->first_problem);
    // Verify found every subtree the entries make, equal to theirs; the log must hold
    // no others. A partition of n entries has n leaves, n/2 subtrees of two, and so on.
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto rows = txn->Rows(ledger_.tables().merkle);
    if (!rows) return Fail(rows.error());
    uint64_t made = 0;
    for (const auto& h : r_.heads) {
      for (uint64_t n = h.size; n > 0; n /= 2)
        made += n;
    }
    if (*rows != made) {
      return Discrepancy("chain", {0, 0,
                                   fmt::format("the Merkle log holds {} subtrees, the entries "
                                               "make {}: it holds subtrees no entry made",
                                               *rows, made)});
    }
    return true;
  }

  // 2. Every checkpoint: signature, origin, and the root of the log at its size.
  Result<bool> Checkpoints() {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    const Tables& t = ledger_.tables();
    note::Verifier key;
    if (o_.ledger_key) {
      key = *o_.ledger_key;
    } else {
      auto stored = CheckpointVerifierKey(*txn, t);
      if (!stored) return Fail(stored.error());
      if (*stored) {
        auto parsed = note::ParseVerifierKey(**stored);
        if (!parsed) return Discrepancy("checkpoints", {0, 0, parsed.error().message()});
        key = *parsed;
        r_.ledger_key_from_ledger = true;
      }
    }
    r_.ledger_key = key.name.empty() ? "" : note::VerifierKey(key);
    std::map<uint32_t, uint64_t> sizes;
    for (const auto& h : r_.heads)
      sizes[h.partition] = h.size;
    auto check = [&](std::string_view text, std::optional<std::pair<uint32_t, uint64_t>> stored_at,
                     const std::string& what) -> Result<bool> {
      uint32_t where_p = stored_at ? stored_at->first : 0;
      uint64_t where_s = stored_at ? stored_at->second : 0;
      auto fail = [&](const std::string& msg) {
        return Discrepancy("checkpoints", {where_p, where_s, what + ": " + msg});
      };
      if (key.name.empty()) return fail("no checkpoint key to check it with");
      auto opened = OpenCheckpoint(text, key);
      if (!opened) return fail(opened.error().message);
      const note::Checkpoint& cp = opened->checkpoint;
      const uint32_t p = opened->partition;
      where_p = p;
      where_s = cp.size;
      if (stored_at && (stored_at->first != p || stored_at->second != cp.size)) {
        return fail(
            fmt::format("stored as partition {} size {} but signed for partition {} size {}",
                        stored_at->first, stored_at->second, p, cp.size));
      }
      if (cp.size > sizes[p]) {
        return fail(fmt::format("signs size {} but partition {} has only {} entries", cp.size, p,
                                sizes[p]));
      }
      auto root = merkle::Root(MerkleNodes(*txn, t, p), cp.size);
      if (!root) return Fail(root.error());
      if (*root != cp.root) {
        return fail(fmt::format(
            "signed root {} but the log's root at size {} is {}: the ledger was rewritten after "
            "this checkpoint was signed",
            Base64Encode(AsBytes(cp.root)), cp.size, Base64Encode(AsBytes(*root))));
      }
      return true;
    };
    bool good = true;
    G60_TRY(ForEachCheckpoint(*txn, t, [&](const StoredCheckpoint& c) -> Status {
      if (!good) return {};
      auto ok =
          check(c.note, std::make_pair(c.partition, c.size),
                fmt::format("stored checkpoint of partition {} size {}", c.partition, c.size));
      if (!ok) return Fail(ok.error());
      good = *ok;
      ++r_.checkpoints;
      return {};
    }));
    if (!good) return false;
    for (size_t i = 0; i < o_.external_checkpoints.size(); ++i) {
      auto ok = check(o_.external_checkpoints[i], std::nullopt,
                      fmt::format("the auditor's checkpoint #{}", i + 1));
      if (!ok) return Fail(ok.error());
      if (!*ok) return false;
      ++r_.external_checkpoints;
    }
    return true;
  }

  // 3. Every record decided again; the entry must come out identical.
  // As in the ingest, chunks of records have their signatures checked on the worker
  // threads as soon as they are read, while this thread appends the chunks already
  // checked, in order, committing the scratch ledger every kBatch records.
  Result<bool> Replay(Ledger& target) {
    const double cpu = ThreadCpuSeconds();
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto cur = lmdb::Cursor::Open(*txn, ledger_.tables().entries);
    if (!cur) return Fail(cur.error());
    // Public keys for the signature pre-check: those the replay has committed, and those
    // of every KeyGrant read so far, which the chunks still to be appended will grant.
    SeenKeys seen;
    PublicKeyLookup lookup = [&](std::string_view id) {
      std::string pk = target.PublicKeyOf(id);
      return pk.empty() ? seen.Find(id) : pk;
    };
    constexpr size_t kChunk = 256;   // records checked by one worker at a time
    constexpr size_t kBatch = 2000;  // records per transaction of the scratch ledger
    const size_t max_in_flight = 4 * threads_;
    struct Chunk {
      std::vector<Record> records;
      std::vector<std::string_view> stored;  // the entries, in the read transaction's map
      std::vector<Prechecked> pre;
    };
    OrderedWorkers<Chunk> checkers(
        threads_, max_in_flight, [&lookup](Chunk& c) { PrecheckAll(c.records, c.pre, lookup, 1); });
    struct Account {  // the replay's CPU, however it ends
      AuditReport& r;
      const OrderedWorkers<Chunk>& checkers;
      double cpu;
      ~Account() {
        r.replay_check_cpu_seconds = checkers.cpu_seconds();
        r.replay_apply_cpu_seconds = ThreadCpuSeconds() - cpu;
      }
    } account{r_, checkers, cpu};
    uint64_t done = 0;
    std::optional<Batch> batch;
    size_t in_batch = 0;
    // The scratch ledger keeps no index: each batch's index keys are looked up in the
    // stored index instead, and at the end the stored index must hold no other keys.
    uint64_t index_keys = 0;
    auto check_index = [&]() -> Result<bool> {
      for (const auto& key : batch->TakeIndexKeys()) {
        auto v = txn->Get(ledger_.tables().index, key);
        if (!v) return Fail(v.error());
        if (!*v || !(*v)->empty()) {
          IndexPosition at = IndexKeyPosition(key);
          return Discrepancy(
              "state", {at.partition, at.sequence,
                        fmt::format("the index that finds entry {} was {} outside the ledger "
                                    "(table index: the entry's index key {} is {} in the stored "
                                    "index)",
                                    at.sequence, *v ? "altered" : "removed", HexEncode(key),
                                    *v ? "altered" : "missing"),
                        *v ? Finding::kAltered : Finding::kRemoved});
        }
        ++index_keys;
      }
      return true;
    };
    auto commit = [&]() -> Result<bool> {
      auto good = check_index();
      if (!good || !*good) return good;
      G60_TRY(batch->Commit());
      batch.reset();
      return true;
    };
    auto apply = [&](Chunk& c) -> Result<bool> {
      if (!batch) {
        auto b = target.BeginBatch();
        if (!b) return Fail(b.error());
        batch.emplace(std::move(*b));
      }
      for (size_t i = 0; i < c.records.size(); ++i) {
        auto out = batch->Append(c.records[i], c.pre[i]);
        if (!out) return Fail(out.error());
        if (!out->appended || out->entry_hash != EntryHash(c.stored[i])) {
          auto header = DecodeEntryHeader(c.stored[i]);
          if (!header) return Fail(header.error());
          std::string replayed;
          auto v =
              batch->txn().Get(target.tables().entries, EntryKey(header->partition, out->sequence));
          if (v && *v) replayed = std::string(**v);
          return Discrepancy(
              "replay",
              {header->partition, header->sequence,
               out->appended
                   ? fmt::format("entry {} records a decision the rules do not make from the "
                                 "records before it: it was altered, or written outside the "
                                 "ledger, with its chain rebuilt ({})",
                                 header->sequence, DescribeDifference(c.stored[i], replayed))
                   : fmt::format("entry {} repeats a Kafka record an earlier entry already holds: "
                                 "a record was duplicated or entries were reordered",
                                 header->sequence),
               out->appended ? Finding::kAltered : Finding::kReordered});
        }
        if (out->verdict == ledger::v1::VERDICT_ACCEPTED) ++r_.accepted;
      }
      in_batch += c.records.size();
      done += c.records.size();
      if (in_batch >= kBatch) {
        auto good = commit();
        if (!good || !*good) return good;
        in_batch = 0;
        Progress("replay", done, total_);
      }
      return true;
    };
    // Appends the chunks already checked; waits for one while the pipeline is full, and
    // for every chunk with `all`.
    auto drain = [&](bool all) -> Result<bool> {
      while (true) {
        bool wait = all ? checkers.in_flight() > 0 : checkers.in_flight() >= max_in_flight;
        auto c = checkers.Next(std::chrono::milliseconds(wait ? 100 : 0));
        if (!c) {
          if (wait) continue;
          return true;
        }
        auto good = apply(*c);
        if (!good || !*good) return good;
      }
    };
    Chunk filling;
    for (auto ok = cur->First();; ok = cur->Next()) {
      if (!ok) return Fail(ok.error());
      if (!*ok) break;
      auto entry = DecodeEntry(cur->value());
      if (!entry) return Fail(entry.error());
      if (entry->body.event_type() == EventType::EVENT_TYPE_KEY_GRANT) {
        seen.Learn(DecodeMessage(entry->body.value()));
      }
      filling.records.push_back(RecordOf(entry->body));
      filling.stored.push_back(cur->value());
      if (filling.records.size() >= kChunk) {
        auto good = drain(false);  // makes room: Submit waits while the pool is full
        if (!good || !*good) return good;
        checkers.Submit(std::move(filling));
        filling = Chunk{};
      }
    }
    if (!filling.records.empty()) {
      auto good = drain(false);
      if (!good || !*good) return good;
      checkers.Submit(std::move(filling));
    }
    auto good = drain(true);
    if (!good || !*good) return good;
    if (batch) {
      good = commit();
      if (!good || !*good) return good;
    }
    Progress("replay", done, total_);
    auto rows = txn->Rows(ledger_.tables().index);
    if (!rows) return Fail(rows.error());
    if (*rows != index_keys) {
      return Discrepancy("state", {0, 0,
                                   fmt::format("keys were added to the index outside the ledger "
                                               "(table index: the stored index holds {} keys, "
                                               "the entries give {}: it holds keys no entry gives)",
                                               *rows, index_keys),
                                   Finding::kAdded});
    }
    return true;
  }

  Result<AuditReport> Run() {
    auto started = Clock::now();
    auto heads = ledger_.Heads();
    if (!heads) return Fail(heads.error());
    for (const auto& h : *heads)
      total_ += h.size;
    auto finish = [&]() -> Result<AuditReport> {
      r_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
      return r_;
    };
    auto stage_started = Clock::now();
    auto timed = [&](const char* stage) {
      auto now = Clock::now();
      r_.stage_seconds[stage] = std::chrono::duration<double>(now - stage_started).count();
      stage_started = now;
    };
    auto chain = Chain();
    if (!chain) return Fail(chain.error());
    timed("chain");
    if (!*chain) return finish();
    auto cps = Checkpoints();
    if (!cps) return Fail(cps.error());
    timed("checkpoints");
    if (!*cps) return finish();

    if (ledger_.partition_count() == 0 && r_.entries > 0) {
      return Fail(Error::FailedPrecondition(fmt::format(
          "ledger {} records no Kafka partition count, which its decisions depend on (rule "
          "WRONG_PARTITION): it was written by a version before it recorded one. Ingest its "
          "topic again into a new ledger directory",
          ledger_.dir())));
    }
    std::error_code ec;
    std::filesystem::remove_all(o_.scratch_dir, ec);
    LedgerOptions lo;
    lo.dir = o_.scratch_dir;
    lo.writer = true;
    lo.scratch = true;
    lo.replay_scratch = true;
    lo.trust_anchors = o_.trust_anchors;
    lo.partition_count = ledger_.partition_count();  // the original's, as it decided with
    lo.map_size_bytes = std::max<size_t>(ledger_.env().map_size(), size_t{1} << 30);
    auto target = Ledger::Open(lo);
    if (!target) return Fail(target.error().Context("opening the audit's scratch ledger"));
    auto replay = Replay(**target);
    if (!replay) return Fail(replay.error());
    timed("replay");
    if (*replay) {
      Progress("state", 0, 1);
      auto diff = CompareLedgers(ledger_, **target);
      if (!diff) return Fail(diff.error());
      timed("state");
      if (*diff) {
        Discrepancy("state", {0, 0,
                              "the business state kept beside the entries was altered outside "
                              "the ledger: it differs from what replaying the entries gives (" +
                                  **diff + ")",
                              Finding::kAltered});
      }
    }
    target->reset();
    std::filesystem::remove_all(o_.scratch_dir, ec);
    return finish();
  }

 private:
  const Ledger& ledger_;
  const AuditOptions& o_;
  AuditReport& r_;
  unsigned threads_ = 1;
  uint64_t total_ = 0;
};

}  // namespace

Result<AuditReport> AuditLedger(const Ledger& ledger, const AuditOptions& options) {
  if (options.scratch_dir.empty()) {
    return Fail(Error::InvalidArgument("the audit needs a scratch directory for its replay"));
  }
  AuditReport report;
  Auditor a(ledger, options, report);
  return a.Run();
}

}  // namespace g60
