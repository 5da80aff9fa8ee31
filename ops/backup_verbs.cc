#include "ops/backup_verbs.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "ledger/backup.h"
#include "ledger/bytes.h"

namespace g60 {

namespace {

using nlohmann::json;

json ReportJson(const BackupReport& r) {
  json parts = json::array();
  for (const auto& p : r.partitions) {
    parts.push_back({{"partition", p.partition},
                     {"size", p.size},
                     {"next_offset", p.next_offset},
                     {"head", HexEncode(AsBytes(p.head_hash))},
                     {"merkle_root", HexEncode(AsBytes(p.merkle_root))},
                     {"checkpoint_size", p.checkpoint_size}});
  }
  json problem = nullptr;
  if (r.problem) {
    problem = {{"partition", r.problem->partition},
               {"sequence", r.problem->sequence},
               {"what", r.problem->what}};
  }
  return {{"source", r.ledger_dir},
          {"destination", r.dest_dir},
          {"verified", !r.problem},
          {"problem", problem},
          {"compact", r.compact},
          {"topic", r.topic},
          {"partition_count", r.partition_count},
          {"trust_anchor_key_ids", r.anchor_key_ids},
          {"anchors_compared_with_configuration", r.anchors_compared},
          {"entries", r.entries},
          {"signatures", r.signatures},
          {"bytes", r.bytes},
          {"ledger_bytes", r.ledger_bytes},
          {"copy_seconds", r.copy_seconds},
          {"verify_seconds", r.verify_seconds},
          {"partitions", parts},
          {"not_copied", r.not_copied},
          {"removed_interrupted_copy", r.removed_interrupted},
          {"same_filesystem_as_source", r.same_filesystem}};
}

void PrintReport(const char* verb, const BackupReport& r) {
  std::printf(
      "%s: topic %s, %u partition(s); trust anchors recorded in the ledger: %s%s\n", verb,
      r.topic.empty() ? "(none consumed yet)" : PrintableBytes(r.topic).c_str(), r.partition_count,
      fmt::format("{}", fmt::join(r.anchor_key_ids, ", ")).c_str(),
      r.anchors_compared ? " (the configuration's)" : " (no configured anchors to compare)");
  for (const auto& p : r.partitions) {
    std::printf(
        "  partition %u size %llu next_offset %lld head %s merkle_root %s checkpoint %llu\n",
        p.partition, static_cast<unsigned long long>(p.size), static_cast<long long>(p.next_offset),
        HexEncode(AsBytes(p.head_hash)).c_str(), HexEncode(AsBytes(p.merkle_root)).c_str(),
        static_cast<unsigned long long>(p.checkpoint_size));
  }
  std::printf(
      "%s: %llu entries verified, %llu signatures checked; %llu bytes (%s copy; the source's "
      "data file is %llu bytes); copy %.2f s, verify %.2f s\n",
      verb, static_cast<unsigned long long>(r.entries),
      static_cast<unsigned long long>(r.signatures), static_cast<unsigned long long>(r.bytes),
      r.compact ? "compact" : "page-for-page", static_cast<unsigned long long>(r.ledger_bytes),
      r.copy_seconds, r.verify_seconds);
  if (r.removed_interrupted) {
    std::printf("%s: removed the remains of an interrupted copy in %s.partial first\n", verb,
                r.dest_dir.c_str());
  }
  if (r.same_filesystem) {
    std::printf(
        "%s: note: %s is on the same filesystem as %s; a copy on the same disk is lost "
        "with it, so keep copies on another disk too\n",
        verb, r.dest_dir.c_str(), r.ledger_dir.c_str());
  }
  if (!r.not_copied.empty()) {
    std::printf("%s: not part of the ledger, so not copied: %s\n", verb,
                fmt::format("{}", fmt::join(r.not_copied, ", ")).c_str());
  }
}

// The copy did not verify: nothing was put in place. Exit 1, naming the first bad entry
// (on standard error when standard output carries the JSON report).
int ReportProblem(const char* verb, const BackupReport& r, bool json_on_stdout,
                  const std::string& what_next) {
  std::fprintf(
      json_on_stdout ? stderr : stdout,
      "%s: FAILED: the copy does not verify at %s. Nothing was kept: %s was not created. %s\n",
      verb, r.problem->ToString().c_str(), r.dest_dir.c_str(), what_next.c_str());
  return kExitProblem;
}

}  // namespace

BackupVerbs::BackupVerbs(CLI::App& app, Common& common) : common_(common) {
  backup_ = app.add_subcommand(
      "backup",
      "copy a ledger (ingest may keep writing) to a new directory, verify the copy, then "
      "rename it into place");
  common.AddLedger(backup_);
  common.AddAnchors(backup_);
  backup_->add_option("--to", to_, "the backup directory to create (must not exist)")->required();
  backup_->add_flag("--compact,!--no-compact", compact_,
                    "copy only the pages in use (default); --no-compact copies every page up to "
                    "the last one in use");
  backup_->add_flag("--json", json_, "print the report as JSON");
  backup_
      ->add_option("--threads", threads_,
                   "threads verifying the copy's signatures (default: [ingest] verify_threads; "
                   "0: one per core); fewer leave more of the machine to a running ingest")
      ->check(CLI::Range(0, 256));

  restore_ = app.add_subcommand(
      "restore", "put a backup in place as a ledger directory, verified; refuses a ledger in use");
  common.AddLedger(restore_);
  common.AddAnchors(restore_);
  restore_->add_option("--from", from_, "the backup directory (made by `backup`)")->required();
  restore_->add_flag("--replace", replace_,
                     "the ledger directory exists: move it aside to DIR.replaced-<time> (kept)");
  restore_->add_flag("--json", json_, "print the report as JSON");
  restore_
      ->add_option("--threads", threads_,
                   "threads verifying the copy's signatures (default: [ingest] verify_threads; "
                   "0: one per core)")
      ->check(CLI::Range(0, 256));
}

std::optional<int> BackupVerbs::Run() {
  if (*backup_) return Backup();
  if (*restore_) return Restore();
  return std::nullopt;
}

int BackupVerbs::Backup() {
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  if (cfg->ledger_dir.empty()) {
    return Report(Error::InvalidArgument("no ledger directory (--ledger or [ledger] dir)"));
  }
  BackupOptions o;
  o.ledger_dir = cfg->ledger_dir;
  o.dest_dir = to_;
  o.compact = compact_;
  o.configured_anchors = cfg->trust_anchors;
  o.verify_threads = threads_ >= 0 ? static_cast<unsigned>(threads_) : cfg->verify_threads;
  o.map_size_bytes = static_cast<size_t>(cfg->map_size_mib) << 20;
  auto r = BackupLedger(o);
  if (!r) return Report(r.error());
  if (json_) std::printf("%s\n", ReportJson(*r).dump(1).c_str());
  if (r->problem) {
    return ReportProblem("backup", *r, json_,
                         "The ledger itself is probably damaged at the same place: run "
                         "`g60ledger verify` and `g60ledger audit` on it.");
  }
  if (!json_) {
    std::printf("backup: %s is a verified copy of %s\n", r->dest_dir.c_str(),
                r->ledger_dir.c_str());
    PrintReport("backup", *r);
  }
  return 0;
}

int BackupVerbs::Restore() {
  auto cfg = common_.Load();
  if (!cfg) return Report(cfg.error());
  if (cfg->ledger_dir.empty()) {
    return Report(
        Error::InvalidArgument("no ledger directory to restore into (--ledger or [ledger] dir)"));
  }
  RestoreOptions o;
  o.backup_dir = from_;
  o.ledger_dir = cfg->ledger_dir;
  o.replace = replace_;
  o.configured_anchors = cfg->trust_anchors;
  o.verify_threads = threads_ >= 0 ? static_cast<unsigned>(threads_) : cfg->verify_threads;
  o.map_size_bytes = static_cast<size_t>(cfg->map_size_mib) << 20;
  auto r = RestoreLedger(o);
  if (!r) return Report(r.error());
  if (json_) {
    json j = ReportJson(r->copy);
    j["replaced_to"] = r->replaced_to;
    std::printf("%s\n", j.dump(1).c_str());
  }
  if (r->copy.problem) {
    return ReportProblem("restore", r->copy, json_,
                         "The backup is damaged: restore from another one.");
  }
  if (!json_) {
    std::printf("restore: %s now holds a verified copy of the backup %s\n",
                r->copy.dest_dir.c_str(), o.backup_dir.c_str());
    if (!r->replaced_to.empty()) {
      std::printf("restore: the ledger that was there is kept in %s\n", r->replaced_to.c_str());
    }
    PrintReport("restore", r->copy);
    std::printf(
        "restore: ingest resumes at each partition's next_offset above and consumes again what "
        "came after; the topic must still hold those records\n");
  }
  return 0;
}

}  // namespace g60
