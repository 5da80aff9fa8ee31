#include "ops/audit_verbs.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ledger/audit.h"
#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ledger/crypto.h"
#include "ledger/event_view.h"
#include "ledger/ledger_set.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"
#include "ledger/query.h"
#include "ledger/strict_json.h"
#include "ledger/verify.h"
#include "producers/keyfile.h"

namespace g60 {

namespace {

using nlohmann::json;
constexpr std::string_view kConsistencyFormat = "g60ledger-consistency/v1";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Fail(Error::NotFound(fmt::format("cannot read {}", path)));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

Status WriteOut(const std::string& path, const std::string& text) {
  return WriteOutput(path, text);
}

// A JSON file handed to us, read under docs/audit.md's rule (ledger/strict_json.h).
Result<json> ReadJson(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return Fail(text.error());
  return ParseStrictJson(*text, path);
}

// A checkpoint file: exactly one signed note, opened with the ledger key.
Result<OpenedCheckpoint> OpenCheckpointFile(const std::string& path, const note::Verifier& key) {
  auto text = ReadFile(path);
  if (!text) return Fail(text.error());
  auto opened = OpenCheckpoint(*text, key);
  if (!opened) return Fail(opened.error().ToError().Context(path));
  return std::move(*opened);
}

// An offline consistency proof file (docs/audit.md section 4): its members exactly, and
// what it repeats of the two checkpoints (origin and sizes) equal to what they sign.
Result<std::vector<Hash>> ReadConsistencyProof(const std::string& path,
                                               const OpenedCheckpoint& older,
                                               const OpenedCheckpoint& newer) {
  auto j = ReadJson(path);
  if (!j) return Fail(j.error());
  G60_TRY(RequireMembers(*j, {"format", "origin", "old_size", "new_size", "hashes"}, {}, path));
  if (!SameJson((*j)["format"], kConsistencyFormat)) {
    return Fail(Error::InvalidArgument(fmt::format("{}: \"format\" is {}, not \"{}\"", path,
                                                   (*j)["format"].dump(), kConsistencyFormat)));
  }
  if (!SameJson((*j)["origin"], newer.checkpoint.origin)) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: \"origin\" is {} but the checkpoints sign the origin \"{}\"", path,
                    (*j)["origin"].dump(), newer.checkpoint.origin)));
  }
  for (auto [member, signed_size] : {std::pair{"old_size", older.checkpoint.size},
                                     std::pair{"new_size", newer.checkpoint.size}}) {
    auto size = UnsignedMember(*j, member, path);
    if (!size) return Fail(size.error());
    if (*size != signed_size) {
      return Fail(Error::InvalidArgument(fmt::format(
          "{}: \"{}\" is {} but the {} checkpoint signs the tree size {}", path, member, *size,
          member == std::string_view("old_size") ? "older" : "newer", signed_size)));
    }
  }
  const json& hashes = (*j)["hashes"];
  if (!hashes.is_array()) {
    return Fail(Error::InvalidArgument(fmt::format("{}: \"hashes\" is not an array", path)));
  }
  std::vector<Hash> proof;
  for (size_t i = 0; i < hashes.size(); ++i) {
    auto raw = hashes[i].is_string() ? Base64Decode(hashes[i].get<std::string>())
                                     : Result<std::string>(Fail(Error::InvalidArgument("")));
    if (!raw || raw->size() != sizeof(Hash)) {
      return Fail(Error::InvalidArgument(
          fmt::format("{}: \"hashes\"[{}] is not the base64 of a 32-byte hash", path, i)));
    }
    Hash h;
    std::copy(raw->begin(), raw->end(), h.begin());
    proof.push_back(h);
  }
  return proof;
}

}  // namespace

Result<std::optional<CheckpointKey>> LoadCheckpointKey(const Config& c) {
  if (c.checkpoint_key_file.empty()) return std::optional<CheckpointKey>{};
  auto k = ReadSecretKeyFile(c.checkpoint_key_file);
  if (!k) return Fail(k.error());
  if (k->role != v1::ROLE_LEDGER) {
    return Fail(Error::InvalidArgument(fmt::format(
        "{} is a {} key; checkpoints are signed with the ledger's own key (`g60ledger keygen "
        "--role ledger`), never with a key that signs events",
        c.checkpoint_key_file, RoleName(k->role))));
  }
  return std::optional<CheckpointKey>(
      CheckpointKey{c.checkpoint_name, k->secret_key, k->public_key});
}

AuditVerbs::AuditVerbs(CLI::App& app, Common& common) : common_(common) {
  auto add_key = [this](CLI::App* sub) {
    sub->add_option("--ledger-key", ledger_key_,
                    "the ledger's checkpoint verifier key (NAME+HASH+KEY, or a file holding it; "
                    "default [checkpoint] verifier)");
  };
  checkpoint_ = app.add_subcommand(
      "checkpoint", "print the signed checkpoints: the latest of each partition, or every one");
  common.AddLedger(checkpoint_);
  checkpoint_->add_option("--partition", partition_,
                          "print this partition's latest note only (with --all: list its "
                          "checkpoints only)");
  checkpoint_->add_flag("--all", all_,
                        "list every checkpoint the ledger signed, oldest first per partition: "
                        "size, last entry's time, root, and whether it verifies");
  checkpoint_->add_option("--size", size_,
                          "print the note of the checkpoint of this tree size (needs --partition)");
  checkpoint_->add_option("--json", json_,
                          "with --all: write the list, with each signed note, as JSON to this "
                          "file ('-': stdout)");
  checkpoint_->add_flag("--issue", issue_,
                        "sign a checkpoint of every partition now (needs the writer lock and "
                        "[checkpoint] key_file)");
  checkpoint_->add_flag("--verifier-key", verifier_only_,
                        "print the verifier key auditors check checkpoints with");

  prove_ = app.add_subcommand("prove", "write a self-contained proof bundle (JSON) for an event");
  common.AddLedger(prove_);
  prove_->add_option("event_id", id_, "event id (or use --at)");
  prove_->add_option("--at", at_, "the entry at PARTITION:SEQUENCE (e.g. a rejected forgery)");
  prove_->add_option("--applicant", applicant_,
                     "the applicant whose event it is (needed when several used the id)");
  prove_->add_option("-o,--out", out_, "bundle file (default: standard output)");

  trace_ = app.add_subcommand(
      "trace", "show an application/approval/payment/clawback chain, each link proved");
  common.AddLedger(trace_);
  common.AddAnchors(trace_);
  trace_->add_option("id", id_, "payment, approval, application or clawback event id")->required();
  trace_->add_option("--applicant", applicant_,
                     "the applicant whose event it is (needed when several used the id)");
  trace_->add_option("--json", out_, "also write the chain as a proof bundle to this file");

  verify_proof_ = app.add_subcommand(
      "verify-proof", "check a proof bundle offline (ledger key and trust anchors only)");
  verify_proof_->add_option("--config", common.config_path, "configuration (for keys only)");
  common.AddAnchors(verify_proof_);
  add_key(verify_proof_);
  verify_proof_->add_option("file", file_, "bundle from `prove` or `trace --json`")->required();

  verify_consistency_ = app.add_subcommand("verify-consistency",
                                           "check that a newer checkpoint extends an older one");
  common.AddLedger(verify_consistency_);
  add_key(verify_consistency_);
  verify_consistency_->add_option("old", old_, "older checkpoint (signed note file)")->required();
  verify_consistency_->add_option("new", new_, "newer checkpoint (signed note file)")->required();
  verify_consistency_->add_option(
      "--proof", proof_, "consistency proof file (offline); default: ask the ledger for one");
  verify_consistency_->add_option("-o,--out", out_, "save the proof used to this file");

  audit_ = app.add_subcommand(
      "audit", "replay the whole ledger: hash links, checkpoints, signatures, every decision");
  common.AddLedger(audit_);
  common.AddAnchors(audit_);
  add_key(audit_);
  audit_
      ->add_option("--checkpoint", checkpoints_,
                   "a checkpoint kept by the auditor (repeatable): must match the ledger too")
      ->allow_extra_args(false);
  audit_->add_option("--json", json_, "write the report as JSON to this file ('-': stdout)");
  audit_->add_option("--scratch", scratch_,
                     "directory for the replay (default: a new one under the system temp dir)");

  verify_set_ = app.add_subcommand(
      "verify-set",
      "verify the ledgers of several ingest nodes of one topic together: every partition "
      "held, overlapping chains the same");
  verify_set_->add_option("--config", common.config_path, "configuration (for anchors only)");
  common.AddAnchors(verify_set_);
  verify_set_->add_option("ledgers", set_dirs_, "ledger directories, one per ingest node")
      ->required();
}

std::optional<int> AuditVerbs::Run() {
  if (*checkpoint_) return Checkpoint();
  if (*prove_) return Prove();
  if (*trace_) return Trace();
  if (*verify_proof_) return VerifyProof();
  if (*verify_consistency_) return VerifyConsistency();
  if (*audit_) return Audit();
  if (*verify_set_) return VerifySet();
  return std::nullopt;
}

Result<note::Verifier> AuditVerbs::LedgerKey(const Config& c) const {
  std::string text = ledger_key_;
  if (!text.empty() && std::filesystem::exists(text)) {
    // A key file holds the key on one line, with or without its newline; nothing else
    // (docs/audit.md, "One rule for every file an auditor hands us").
    auto f = ReadFile(text);
    if (!f) return Fail(f.error());
    std::string_view line = *f;
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (auto bad = line.find_first_of("\r\n"); bad != std::string_view::npos) {
      return Fail(Error::InvalidArgument(fmt::format(
          "--ledger-key {}: the file must hold the verifier key alone on one line; it has {} at "
          "byte {}",
          text, line[bad] == '\r' ? "a carriage return (Windows line end)" : "a second line",
          bad)));
    }
    text = std::string(line);
  }
  if (text.empty()) text = c.checkpoint_verifier;
  if (text.empty() && !c.checkpoint_key_file.empty()) {
    auto k = ReadPublicKeyFile(c.checkpoint_key_file);
    if (!k) return Fail(k.error());
    return note::Verifier{c.checkpoint_name, k->public_key};
  }
  if (text.empty()) {
    return Fail(Error::InvalidArgument(
        "no ledger key: give --ledger-key NAME+HASH+KEY (printed by `g60ledger checkpoint "
        "--verifier-key`) or set [checkpoint] verifier"));
  }
  auto v = note::ParseVerifierKey(text);
  if (!v) return Fail(v.error().Context("--ledger-key"));
  return *v;
}

int AuditVerbs::Checkpoint() {
  if (size_ && partition_ < 0) {
    return Report(Error::InvalidArgument(
        "--size N names a checkpoint of one partition's log: give --partition P too"));
  }
  if (size_ && all_) {
    return Report(
        Error::InvalidArgument("--size prints one checkpoint and --all lists them: give one"));
  }
  if (!json_.empty() && !all_) {
    return Report(Error::InvalidArgument("--json writes the list of --all: give --all too"));
  }
  if ((all_ || size_) && (issue_ || verifier_only_)) {
    return Report(Error::InvalidArgument(
        "--all and --size read checkpoints; run --issue or --verifier-key on their own"));
  }
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  if (issue_) {
    auto key = LoadCheckpointKey(*cfg);
    if (!key) return Report(key.error());
    if (!*key) return Report(Error::InvalidArgument("--issue needs [checkpoint] key_file"));
    auto ledger = common_.OpenLedger(*cfg, true);
    if (!ledger) return Report(ledger.error());
    // What is signed must be what the entries give: a stored Merkle row altered on disk
    // would otherwise be signed into a root no entry supports, and the partition could
    // never be proved consistent again. The entries, hash links, heads and every stored
    // subtree are checked first (signatures are not what a checkpoint commits to).
    VerifyOptions vo;
    vo.trust_anchors = cfg->trust_anchors;
    vo.threads = cfg->verify_threads;
    vo.check_signatures = false;
    auto checked = VerifyLedger(**ledger, vo);
    if (!checked) return Report(checked.error());
    if (!checked->ok()) {
      return Report(Error::DataLoss(fmt::format(
          "refusing to sign a checkpoint: the ledger does not match its entries at {}; run "
          "g60ledger audit, and restore the ledger from a backup or ingest its topic again",
          checked->first_problem->ToString())));
    }
    Checkpointer cp(**key, 1, std::chrono::milliseconds(0));
    auto batch = (*ledger)->BeginBatch();
    if (!batch) return Report(batch.error());
    auto issued = cp.IssueDue(*batch, true);
    if (!issued) return Report(issued.error());
    if (auto s = batch->Commit(); !s) return Report(s.error());
    std::fprintf(stderr, "checkpoint: signed %zu new checkpoint(s)\n", issued->size());
  }
  auto ledger = common_.OpenLedger(*cfg, false);
  if (!ledger) return Report(ledger.error());
  auto txn = lmdb::Txn::Begin((*ledger)->env(), true);
  if (!txn) return Report(txn.error());
  const Tables& t = (*ledger)->tables();
  auto verifier = CheckpointVerifierKey(*txn, t);
  if (!verifier) return Report(verifier.error());
  if (!*verifier) {
    return Report(Error::NotFound(
        "the ledger has no signed checkpoint yet (set [checkpoint] key_file for ingest, or "
        "run `g60ledger checkpoint --issue`)"));
  }
  if (verifier_only_) {
    std::printf("%s\n", (*verifier)->c_str());
    return 0;
  }
  auto key = note::ParseVerifierKey(**verifier);
  if (!key)
    return Report(
        Error::DataLoss("the ledger's recorded checkpoint key: " + key.error().message()));
  if (all_) return CheckpointHistory(*txn, t, *key);
  if (size_) {
    auto c = CheckpointAt(*txn, t, static_cast<uint32_t>(partition_), *size_);
    if (!c) return Report(c.error());
    std::fwrite(c->note.data(), 1, c->note.size(), stdout);
    return 0;
  }
  if (partition_ >= 0) {
    auto latest = LatestCheckpoint(*txn, t, static_cast<uint32_t>(partition_));
    if (!latest) return Report(latest.error());
    if (!*latest) {
      return Report(Error::NotFound(fmt::format("partition {} has no checkpoint", partition_)));
    }
    std::fwrite((*latest)->note.data(), 1, (*latest)->note.size(), stdout);
    return 0;
  }
  auto heads = ReadHeads(*txn, t);
  if (!heads) return Report(heads.error());
  std::printf("verifier key %s\n", (*verifier)->c_str());
  std::printf("%9s %12s %12s  %s\n", "partition", "entries", "checkpoint", "root (base64)");
  for (const auto& h : *heads) {
    auto latest = LatestCheckpoint(*txn, t, h.partition);
    if (!latest) return Report(latest.error());
    std::string size = "-", root = "-";
    if (*latest) {
      auto cp = OpenCheckpoint((*latest)->note, *key, h.partition);
      if (!cp) {
        return Report(Error::DataLoss(fmt::format("partition {}'s latest stored checkpoint: {}",
                                                  h.partition, cp.error().message)));
      }
      size = std::to_string(cp->checkpoint.size);
      root = Base64Encode(AsBytes(cp->checkpoint.root));
    }
    std::printf("%9u %12llu %12s  %s\n", h.partition, static_cast<unsigned long long>(h.size),
                size.c_str(), root.c_str());
  }
  return 0;
}

int AuditVerbs::CheckpointHistory(const lmdb::Txn& txn, const Tables& t,
                                  const note::Verifier& key) {
  auto heads = ReadHeads(txn, t);
  if (!heads) return Report(heads.error());
  json list = json::array();
  bool all_verified = true;
  bool table = json_.empty() || json_ != "-";
  if (table) {
    std::printf("verifier key %s\n", note::VerifierKey(key).c_str());
    std::printf("%9s %12s  %-19s  %-44s  %s\n", "partition", "size", "last entry (CST)",
                "root (base64)", "check");
  }
  bool found_partition = partition_ < 0;
  for (const auto& h : *heads) {
    if (partition_ >= 0 && h.partition != static_cast<uint32_t>(partition_)) continue;
    found_partition = true;
    // A page at a time, so that a long history never sits in memory whole.
    constexpr size_t kPage = 1000;
    for (uint64_t after = 0;;) {
      auto page = CheckpointsOf(txn, t, h.partition, after, kPage);
      if (!page) return Report(page.error());
      for (const auto& c : *page) {
        auto v = ViewCheckpoint(txn, t, c, key);
        if (!v) return Report(v.error());
        all_verified = all_verified && v->verified();
        if (table) {
          std::printf("%9u %12llu  %-19s  %-44s  %s\n", c.partition,
                      static_cast<unsigned long long>(c.size),
                      FormatCst(v->last_entry_timestamp_ms).c_str(),
                      v->root ? Base64Encode(AsBytes(*v->root)).c_str() : "-",
                      v->verified() ? "ok" : v->problem.c_str());
        }
        if (!json_.empty()) list.push_back(v->ToJson());
        after = c.size;
      }
      if (page->size() < kPage) break;
    }
  }
  if (!found_partition) {
    return Report(Error::NotFound(
        fmt::format("the ledger has no partition {} (it has {})", partition_, heads->size())));
  }
  if (!json_.empty()) {
    if (auto s = WriteOut(json_, list.dump(1) + "\n"); !s) return Report(s.error());
  }
  if (!all_verified) {
    std::fprintf(stderr,
                 "checkpoint: a stored checkpoint does not verify (the check column says why); "
                 "run g60ledger audit\n");
    return kExitProblem;
  }
  return 0;
}

int AuditVerbs::Prove() {
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  const Ledger& ledger = *opened->ledger;
  std::vector<EntryRef> refs;
  std::string subject = id_;
  if (!at_.empty()) {
    unsigned p = 0;
    unsigned long long s = 0;
    char tail = 0;
    if (std::sscanf(at_.c_str(), "%u:%llu%c", &p, &s, &tail) != 2) {
      return Report(Error::InvalidArgument("--at takes PARTITION:SEQUENCE, e.g. 3:120"));
    }
    refs.push_back(EntryRef{p, s});
    subject = at_;
  } else {
    if (id_.empty()) return Report(Error::InvalidArgument("prove needs an event id or --at"));
    auto txn = lmdb::Txn::Begin(ledger.env(), true);
    if (!txn) return Report(txn.error());
    auto found = ResolveEvent(*txn, ledger.tables(), id_, applicant_);
    if (!found) {
      if (found.error().code() != ErrorCode::kNotFound) return Report(found.error());
      return Report(Error::NotFound(found.error().message() +
                                    " (a rejected forgery claims no id: use --at)"));
    }
    refs = *found;
  }
  auto bundle = BuildBundle(ledger, refs, "event", subject);
  if (!bundle) return Report(bundle.error());
  if (auto s = WriteOut(out_, bundle->dump(2) + "\n"); !s) return Report(s.error());
  if (!out_.empty() && out_ != "-") {
    std::fprintf(stderr, "prove: wrote %s (%zu link(s))\n", out_.c_str(),
                 (*bundle)["links"].size());
  }
  return 0;
}

int AuditVerbs::Trace() {
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  const Ledger& ledger = *opened->ledger;
  std::vector<EntryRef> refs;
  std::optional<note::Verifier> key;
  {
    auto txn = lmdb::Txn::Begin(ledger.env(), true);
    if (!txn) return Report(txn.error());
    auto traced = TraceEntries(*txn, ledger.tables(), id_, applicant_);
    if (!traced) return Report(traced.error());
    refs = *traced;
    auto stored = CheckpointVerifierKey(*txn, ledger.tables());
    if (!stored) return Report(stored.error());
    if (*stored) {
      auto v = note::ParseVerifierKey(**stored);
      if (!v) return Report(v.error());
      key = *v;
    }
  }
  auto bundle = BuildBundle(ledger, refs, "trace", id_);
  if (!bundle) return Report(bundle.error());
  // Each link is checked as an auditor would check the bundle: with the configured key
  // if there is one, the anchors of the configuration, and nothing else.
  auto configured = LedgerKey(opened->config);
  BundleTrust trust{configured ? *configured : *key, opened->config.trust_anchors};
  auto verified = VerifyBundle(*bundle, trust);
  std::printf("trace of %s: %zu link(s)%s\n", id_.c_str(), (*bundle)["links"].size(),
              configured ? "" : " (checked with the key the ledger names; give --ledger-key)");
  std::printf("  %-11s %5s %-26s %-9s %-22s %18s  %-18s %s\n", "role", "entry", "event id",
              "verdict", "reason", "amount (CNY)", "catalogue", "detail");
  // The catalogue each link was decided under (EntryBody.catalog_hash, by its version).
  auto catalogs = LinkCatalogues(ledger, *bundle);
  if (!catalogs) return Report(catalogs.error());
  for (size_t i = 0; i < (*bundle)["links"].size(); ++i) {
    const json& l = (*bundle)["links"][i];
    std::string catalog = (*catalogs)[i]["catalog"];
    std::printf("  %-11s %2u/%-3llu %-26s %-9s %-22s %18s  %-18s %s\n",
                l["role"].get<std::string>().c_str(), l["partition"].get<uint32_t>(),
                static_cast<unsigned long long>(l["sequence"].get<uint64_t>()),
                l["event_id"].get<std::string>().c_str(), l["verdict"].get<std::string>().c_str(),
                l["reason"].get<std::string>().c_str(),
                FormatFen(l["amount_fen"].get<int64_t>()).c_str(), catalog.c_str(),
                l["detail"].get<std::string>().c_str());
  }
  if (!verified) {
    std::printf("proofs: FAILED: %s\n", verified.error().message().c_str());
    return kExitProblem;
  }
  const auto& first = verified->front();
  std::printf(
      "proofs: every link's inclusion proof and signature verify (checkpoint %s size %llu)\n",
      first.origin.c_str(), static_cast<unsigned long long>(first.tree_size));
  if (!out_.empty()) {
    if (auto s = WriteOut(out_, bundle->dump(2) + "\n"); !s) return Report(s.error());
  }
  return 0;
}

int AuditVerbs::VerifyProof() {
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  auto key = LedgerKey(*cfg);
  if (!key) return Report(key.error());
  if (auto missing = MissingAnchors(*cfg, "verify-proof")) return Report(*missing);
  auto bundle = ReadJson(file_);
  if (!bundle) return Report(bundle.error());
  auto verified = VerifyBundle(*bundle, BundleTrust{*key, cfg->trust_anchors});
  if (!verified) {
    std::printf("verify-proof: FAILED: %s\n", verified.error().message().c_str());
    return kExitProblem;
  }
  for (const auto& l : *verified) {
    std::printf("  ok %-11s %u/%llu %s %s %s %s; signer %s; in %s at size %llu\n", l.role.c_str(),
                l.at.partition, static_cast<unsigned long long>(l.at.sequence), l.event_id.c_str(),
                l.verdict.c_str(), l.reason.c_str(), FormatFen(l.amount_fen).c_str(),
                l.signer.empty() ? "(rejected: not relied on)" : l.signer.c_str(), l.origin.c_str(),
                static_cast<unsigned long long>(l.tree_size));
  }
  std::printf("verify-proof: OK: %zu link(s) of %s %s proved\n", verified->size(),
              (*bundle)["kind"].get<std::string>().c_str(),
              (*bundle)["subject"].get<std::string>().c_str());
  return 0;
}

int AuditVerbs::VerifyConsistency() {
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  auto key = LedgerKey(*cfg);
  if (!key) return Report(key.error());
  auto older = OpenCheckpointFile(old_, *key);
  if (!older) return Report(older.error());
  auto newer = OpenCheckpointFile(new_, *key);
  if (!newer) return Report(newer.error());
  if (older->partition != newer->partition) {
    return Report(
        Error::InvalidArgument(fmt::format("{} is of partition {}, {} of partition {}", old_,
                                           older->partition, new_, newer->partition)));
  }
  if (older->checkpoint.size > newer->checkpoint.size) {
    return Report(
        Error::InvalidArgument(fmt::format("{} (size {}) is newer than {} (size {})", old_,
                                           older->checkpoint.size, new_, newer->checkpoint.size)));
  }
  std::vector<Hash> proof;
  if (!proof_.empty()) {
    auto read = ReadConsistencyProof(proof_, *older, *newer);
    if (!read) return Report(read.error());
    proof = std::move(*read);
  } else {
    auto ledger = common_.OpenLedger(*cfg, false);
    if (!ledger)
      return Report(ledger.error().Context("asking the ledger for a proof (or --proof)"));
    auto txn = lmdb::Txn::Begin((*ledger)->env(), true);
    if (!txn) return Report(txn.error());
    auto head = (*ledger)->Head(newer->partition);
    if (!head) return Report(head.error());
    if (!*head || (*head)->size < newer->checkpoint.size) {
      return Report(Error::FailedPrecondition(fmt::format(
          "the ledger's partition {} has fewer entries than {} signs", newer->partition, new_)));
    }
    auto p = merkle::ConsistencyProof(MerkleNodes(*txn, (*ledger)->tables(), newer->partition),
                                      older->checkpoint.size, newer->checkpoint.size);
    if (!p) return Report(p.error());
    proof = *p;
  }
  if (!out_.empty()) {
    json j{{"format", kConsistencyFormat},
           {"origin", newer->checkpoint.origin},
           {"old_size", older->checkpoint.size},
           {"new_size", newer->checkpoint.size},
           {"hashes", json::array()}};
    for (const auto& h : proof)
      j["hashes"].push_back(Base64Encode(AsBytes(h)));
    if (auto s = WriteOut(out_, j.dump(2) + "\n"); !s) return Report(s.error());
  }
  auto ok = merkle::VerifyConsistency(older->checkpoint.size, newer->checkpoint.size,
                                      older->checkpoint.root, newer->checkpoint.root, proof);
  if (!ok) {
    std::printf(
        "verify-consistency: INCONSISTENT: %s at size %llu is not a prefix of the log at size "
        "%llu: %s (history was rewritten, or the proof is wrong)\n",
        older->checkpoint.origin.c_str(), static_cast<unsigned long long>(older->checkpoint.size),
        static_cast<unsigned long long>(newer->checkpoint.size), ok.error().message().c_str());
    return kExitProblem;
  }
  std::printf("verify-consistency: OK: %s size %llu extends size %llu (%zu proof hashes%s)\n",
              newer->checkpoint.origin.c_str(),
              static_cast<unsigned long long>(newer->checkpoint.size),
              static_cast<unsigned long long>(older->checkpoint.size), proof.size(),
              proof_.empty() ? ", proof from the ledger" : "");
  return 0;
}

int AuditVerbs::Audit() {
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  const Config& cfg = opened->config;
  if (auto missing = MissingAnchors(cfg, "audit")) return Report(*missing);
  AuditOptions o;
  o.trust_anchors = cfg.trust_anchors;
  o.threads = cfg.verify_threads;
  if (!ledger_key_.empty() || !cfg.checkpoint_verifier.empty() ||
      !cfg.checkpoint_key_file.empty()) {
    auto key = LedgerKey(cfg);
    if (!key) return Report(key.error());
    o.ledger_key = *key;
  }
  for (const auto& path : checkpoints_) {
    auto text = ReadFile(path);
    if (!text) return Report(text.error());
    o.external_checkpoints.push_back(*text);
  }
  std::string scratch = scratch_;
  if (scratch.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "g60ledger-audit-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      return Report(Error::FailedPrecondition("cannot create a scratch directory for the replay"));
    }
    scratch = tmpl;
  }
  o.scratch_dir = scratch;
  bool tty = ::isatty(STDERR_FILENO);
  auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  if (tty) {
    o.progress = [&](std::string_view stage, uint64_t done, uint64_t total) {
      auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(200) && done < total) return;
      last = now;
      int width = 30;
      int filled =
          total ? static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width)
                : width;
      filled = std::min(filled, width);
      std::fprintf(stderr, "\raudit %-11.*s [%s%s] %llu/%llu", static_cast<int>(stage.size()),
                   stage.data(), std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(width - filled), '.').c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    };
  }
  auto report = AuditLedger(*opened->ledger, o);
  if (tty) std::fprintf(stderr, "\n");
  std::error_code ec;
  if (scratch_.empty()) std::filesystem::remove_all(scratch, ec);
  if (!report) return Report(report.error());
  if (!json_.empty()) {
    if (auto s = WriteOut(json_, report->ToJson().dump(2) + "\n"); !s) return Report(s.error());
  }
  if (json_ != "-") {
    if (!report->ok()) {
      std::printf("audit: FAILED (%s) at %s\n", report->stage.c_str(),
                  report->first_discrepancy->ToString().c_str());
    } else {
      std::printf(
          "audit: OK: %llu entries in %zu partition(s): hash links, Merkle logs, %llu stored and "
          "%llu external checkpoint(s), %llu accepted decisions (signatures, roles, rules) "
          "re-derived, state equal; %.1f s\n",
          static_cast<unsigned long long>(report->entries), report->heads.size(),
          static_cast<unsigned long long>(report->checkpoints),
          static_cast<unsigned long long>(report->external_checkpoints),
          static_cast<unsigned long long>(report->accepted), report->seconds);
      if (report->ledger_key_from_ledger) {
        std::printf(
            "audit: note: checkpoints were checked with the key the ledger names (%s); give "
            "--ledger-key to check them with your own copy\n",
            report->ledger_key.c_str());
      }
    }
  }
  return report->ok() ? 0 : kExitProblem;
}

// Each ledger verified on its own (hash links, Merkle log, signatures from the anchors),
// then the set checked together (ledger/ledger_set.h).
int AuditVerbs::VerifySet() {
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  if (auto missing = MissingAnchors(*cfg, "verify-set")) return Report(*missing);
  std::vector<std::unique_ptr<Ledger>> ledgers;
  std::vector<SetMember> members;
  bool intact = true;
  // One LMDB environment must not be opened twice in a process: the same ledger named
  // twice (or through another path) is a usage error, not a second node.
  std::map<std::pair<dev_t, ino_t>, std::string> seen;
  for (const auto& dir : set_dirs_) {
    struct stat st {};
    if (::stat((std::filesystem::path(dir) / "data.mdb").c_str(), &st) != 0) {
      return Report(
          Error::NotFound(fmt::format("{} is not a ledger directory (no data.mdb)", dir)));
    }
    auto [it, fresh] = seen.emplace(std::pair{st.st_dev, st.st_ino}, dir);
    if (!fresh) {
      return Report(Error::InvalidArgument(fmt::format(
          "{} and {} are the same ledger: name each ingest node's once", it->second, dir)));
    }
  }
  for (const auto& dir : set_dirs_) {
    LedgerOptions o;
    o.dir = dir;
    auto l = Ledger::Open(o);
    if (!l) return Report(l.error());
    VerifyOptions vo;
    vo.trust_anchors = cfg->trust_anchors;
    vo.threads = cfg->verify_threads;
    auto report = VerifyLedger(**l, vo);
    if (!report) return Report(report.error().Context(dir));
    if (report->ok()) {
      std::printf("verify %s: OK: %llu entries in %zu partition(s)\n", dir.c_str(),
                  static_cast<unsigned long long>(report->entries), report->heads.size());
    } else {
      std::printf("verify %s: FAILED at %s\n", dir.c_str(),
                  report->first_problem->ToString().c_str());
      intact = false;
    }
    members.push_back({dir, l->get()});
    ledgers.push_back(std::move(*l));
  }
  auto set = CheckLedgerSet(members);
  if (!set) return Report(set.error());
  for (const auto& ph : set->partitions) {
    std::string holders;
    for (size_t k = 0; k < ph.holders.size(); ++k) {
      const auto& [i, h] = ph.holders[k];
      holders += fmt::format("{}{} ({} entries{})", holders.empty() ? "" : ", ", members[i].name,
                             h.size, ph.holders.size() > 1 && k == ph.longest ? ", longest" : "");
    }
    std::printf("partition %u: %s\n", ph.partition, holders.c_str());
  }
  for (const auto& p : set->problems)
    std::printf("verify-set: PROBLEM: %s\n", p.c_str());
  if (!intact || !set->ok()) {
    std::printf("verify-set: FAILED\n");
    return kExitProblem;
  }
  std::printf(
      "verify-set: OK: %zu ledger(s) hold all %u partition(s); every overlapping chain is a "
      "prefix of the longest\n",
      members.size(), set->partition_count);
  return 0;
}

}  // namespace g60
