// g60ledger: the one command-line entry point. Each verb parses its flags here and calls
// into the component that owns the job (ledger/, producers/, consumers/, ops/).
#include <fcntl.h>
#include <fmt/format.h>
#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "consumers/ingest.h"
#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/config.h"
#include "ledger/merkle.h"
#include "ledger/store.h"
#include "ledger/summary.h"
#include "ledger/verify.h"
#include "ops/audit_verbs.h"
#include "ops/backup_verbs.h"
#include "ops/bench.h"
#include "ops/broker.h"
#include "ops/common.h"
#include "ops/demo_stream.h"
#include "ops/query_bench.h"
#include "ops/query_verbs.h"
#include "producers/keyfile.h"
#include "producers/ndjson.h"
#include "producers/producer.h"
#include "producers/signer.h"

namespace g60 {
namespace {

// ---- keygen

int RunKeygen(const std::string& role_name, const std::string& out) {
  v1::Role role = RoleFromName(role_name);
  if (role == v1::ROLE_UNSPECIFIED) {
    std::fprintf(stderr,
                 "g60ledger: unknown role '%s' (admin, applicant-portal, district-approver, "
                 "municipal-approver, treasury)\n",
                 role_name.c_str());
    return kExitUsage;
  }
  auto k = GenerateKeyFile(out, role);
  if (!k) return Report(k.error());
  std::printf(
      "key_id %s\nrole %s\npublic_key %s\nsecret key written to %s (mode 0600), public key to "
      "%s.pub\n",
      k->key_id.c_str(), RoleName(role), Base64Encode(k->public_key).c_str(), out.c_str(),
      out.c_str());
  return 0;
}

// ---- broker

int RunBroker(int brokers, int partitions, const std::string& bootstrap_file) {
  BrokerOptions o;
  o.brokers = brokers;
  o.replication = std::min(3, brokers);
  o.topics = {{"g60.events", partitions}, {"g60.checkpoints", 1}};
  auto b = DevBroker::Start(o);
  if (!b) return Report(b.error());
  std::string bs = (*b)->bootstrap();
  std::printf(
      "development broker (librdkafka mock cluster, in memory, about 5 MiB kept per "
      "partition; not for production)\nbootstrap %s\ntopics g60.events (%d partitions), "
      "g60.checkpoints (1 partition)\n",
      bs.c_str(), partitions);
  std::fflush(stdout);
  if (!bootstrap_file.empty()) {
    std::string tmp = bootstrap_file + ".tmp";
    {
      std::ofstream f(tmp);
      f << bs << "\n";
    }
    std::filesystem::rename(tmp, bootstrap_file);  // readers never see half a file
  }
  InstallSignalHandlers();
  while (!g_stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!bootstrap_file.empty()) std::filesystem::remove(bootstrap_file);
  std::printf("development broker stopped\n");
  return 0;
}

// ---- produce

struct ProduceArgs {
  std::vector<std::string> key_files;
  std::vector<std::string> inputs;
  bool signed_input = false;
  int progress_every = 10000;
  std::string transactional_id;  // all-or-nothing: one Kafka transaction for every input
  bool send_rejected = false;    // send events the ledger will reject (drills, tests)
};

int RunProduce(const Common& common, const ProduceArgs& args) {
  auto cfg = common.Load();
  if (!cfg) return Report(cfg.error());
  std::vector<KeyFile> keys;
  for (const auto& f : args.key_files) {
    auto k = ReadSecretKeyFile(f);
    if (!k) return Report(k.error());
    keys.push_back(*k);
  }
  if (!args.signed_input && keys.empty()) {
    std::fprintf(stderr, "g60ledger: produce needs --key FILE to sign with (or --signed input)\n");
    return kExitUsage;
  }
  Signer signer(keys, args.send_rejected);
  ProducerOptions po;
  po.bootstrap = cfg->bootstrap;
  po.topic = cfg->topic;
  po.kafka = cfg->producer_properties;
  po.transactional_id = args.transactional_id;
  const bool transactional = !args.transactional_id.empty();
  auto producer = Producer::Create(po);
  if (!producer) return Report(producer.error());
  if (transactional) {
    if (auto s = (*producer)->BeginTransaction(); !s) return Report(s.error());
  }

  uint64_t lines = 0, sent = 0;
  std::vector<std::string> bad_lines;
  auto handle = [&](const std::string& origin, uint64_t line_no,
                    const std::string& line) -> Status {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return {};
    ++lines;
    std::string where = fmt::format("{}:{}", origin, line_no);
    std::string value;
    v1::Event event;
    if (args.signed_input) {
      auto se = ParseSignedEventJson(line);
      if (!se) {
        bad_lines.push_back(fmt::format("{}: {}", where, se.error().message()));
        return {};
      }
      if (!event.ParseFromString(se->event())) {
        bad_lines.push_back(fmt::format("{}: the signed bytes are not an Event", where));
        return {};
      }
      G60_ASSERT(se->SerializeToString(&value));
    } else {
      auto e = ParseEventJson(line);
      if (!e) {
        bad_lines.push_back(fmt::format("{}: {}", where, e.error().message()));
        return {};
      }
      event = std::move(*e);
      auto v = signer.Sign(event);
      if (!v) {
        bad_lines.push_back(
            fmt::format("{}: event {}: {}", where, event.event_id(), v.error().message()));
        return {};
      }
      value = std::move(*v);
    }
    const bool control = IsControlEvent(event);
    if (!control && event.applicant_id().empty()) {
      bad_lines.push_back(
          fmt::format("{}: event {} has no applicant_id (the Kafka key)", where, event.event_id()));
      return {};
    }
    // What the ledger would reject without looking at its state (no payload, a field
    // outside its rule) is refused here, before anything is on the record.
    if (!args.send_rejected) {
      DecodedMessage d = DecodeMessage(value);
      if (!d.ok()) {
        bad_lines.push_back(fmt::format(
            "{}: event {}: the ledger would reject it as {}: {}; nothing was sent: correct the "
            "line (or give --send-rejected to put the rejection on the record)",
            where, PrintableBytes(event.event_id()), ReasonName(d.reason), d.detail));
        return {};
      }
    }
    if (transactional && !bad_lines.empty()) return {};  // aborted anyway: only check the rest
    std::string label = fmt::format("event {} ({})", event.event_id(), where);
    if (control) {
      G60_TRY((*producer)->SendToAll(value, label));
    } else {
      G60_TRY((*producer)->Send(event.applicant_id(), value, label));
    }
    ++sent;
    if (args.progress_every > 0 && sent % static_cast<uint64_t>(args.progress_every) == 0) {
      std::fprintf(stderr, "produce: %llu events sent\n", static_cast<unsigned long long>(sent));
    }
    return {};
  };

  std::vector<std::string> inputs = args.inputs;
  if (inputs.empty()) inputs.push_back("-");
  for (const auto& input : inputs) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (input != "-") {
      file.open(input);
      if (!file) return Report(Error::NotFound("cannot read " + input));
      in = &file;
    }
    std::string line;
    uint64_t line_no = 0;
    while (std::getline(*in, line)) {
      if (auto s = handle(input == "-" ? "stdin" : input, ++line_no, line); !s) {
        if (transactional) (void)(*producer)->AbortTransaction();
        return Report(s.error());
      }
    }
  }
  if (transactional) {
    // All or nothing: one bad line, or one failed delivery, and no event of the run is
    // ever ingested (the ingest reads committed records only).
    Status done =
        bad_lines.empty() ? (*producer)->CommitTransaction() : (*producer)->AbortTransaction();
    if (!done) {
      for (const auto& b : bad_lines)
        std::fprintf(stderr, "failed: %s\n", b.c_str());
      return Report(done.error());
    }
    if (!bad_lines.empty()) {
      std::printf(
          "produce: %llu line(s) read, %zu bad line(s): transaction %s aborted, nothing "
          "will be ingested\n",
          static_cast<unsigned long long>(lines), bad_lines.size(), args.transactional_id.c_str());
      for (const auto& b : bad_lines)
        std::fprintf(stderr, "failed: %s\n", b.c_str());
      return kExitProblem;
    }
    std::printf("produce: transaction %s committed\n", args.transactional_id.c_str());
  }
  auto summary = (*producer)->Flush();
  if (!summary) return Report(summary.error());
  std::printf(
      "produce: %llu line(s) read, %llu event(s) sent, %llu message(s) delivered, %zu bad "
      "line(s), %zu delivery failure(s)\n",
      static_cast<unsigned long long>(lines), static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(summary->delivered), bad_lines.size(),
      summary->failures.size());
  for (const auto& b : bad_lines)
    std::fprintf(stderr, "failed: %s\n", b.c_str());
  for (const auto& f : summary->failures) {
    std::fprintf(stderr, "failed: %s: delivery error: %s\n", f.label.c_str(), f.error.c_str());
  }
  return bad_lines.empty() && summary->failures.empty() ? 0 : kExitProblem;
}

// ---- ingest

// The ingest's own account of a run, for the bench's real-Kafka phase (which runs the
// ingest as a process of its own): counts, seconds and this process's peak RSS.
Status WriteIngestStats(const std::string& path, const IngestStats& s) {
  double peak_mib = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) peak_mib = std::stod(line.substr(6)) / 1024.0;
  }
  nlohmann::json j = {{"consumed", s.consumed},
                      {"appended", s.appended},
                      {"accepted", s.accepted},
                      {"rejected", s.rejected},
                      {"batches", s.batches},
                      {"busy_seconds", s.busy_seconds},
                      {"verify_cpu_seconds", s.verify_cpu_seconds},
                      {"write_cpu_seconds", s.write_cpu_seconds},
                      {"consume_cpu_seconds", s.consume_cpu_seconds},
                      {"commit_seconds", s.commit_seconds},
                      {"peak_rss_mib", peak_mib}};
  return WriteOutput(path, j.dump(1) + "\n");
}

int RunIngestVerb(const Common& common, bool until_caught_up, bool assign_all,
                  const std::string& stats_json) {
  auto cfg = common.Load();
  if (!cfg) return Report(cfg.error());
  auto ledger = common.OpenLedger(*cfg, true);
  if (!ledger) return Report(ledger.error());
  IngestOptions o;
  o.bootstrap = cfg->bootstrap;
  o.topic = cfg->topic;
  o.group_id = cfg->group_id;
  o.until_caught_up = until_caught_up;
  o.assign_all = assign_all;
  o.batch_max_messages = cfg->batch_max_messages;
  o.batch_max_ms = cfg->batch_max_ms;
  o.verify_threads = cfg->verify_threads;
  o.kafka = cfg->consumer_properties;
  std::string listen = common.metrics_listen.empty() ? cfg->metrics_listen : common.metrics_listen;
  auto metrics = IngestMetrics::Create(listen);
  if (!metrics) return Report(metrics.error());
  o.metrics = metrics->get();
  if (!listen.empty()) spdlog::info("ingest: metrics on http://{}/metrics", listen);
  auto key = LoadCheckpointKey(*cfg);
  if (!key) return Report(key.error());
  std::optional<Checkpointer> checkpointer;
  if (*key) {
    checkpointer.emplace(**key, cfg->checkpoint_every_entries,
                         std::chrono::seconds(cfg->checkpoint_every_seconds));
    o.checkpointer = &*checkpointer;
    o.checkpoint_topic = cfg->checkpoint_topic;
    o.producer_kafka = cfg->producer_properties;
    spdlog::info("ingest: signing checkpoints as {} every {} entries or {} s, produced to {}",
                 (*key)->name, cfg->checkpoint_every_entries, cfg->checkpoint_every_seconds,
                 cfg->checkpoint_topic.empty() ? "(no topic)" : cfg->checkpoint_topic);
  } else {
    spdlog::warn(
        "ingest: checkpoints are off: no [checkpoint] key_file in the configuration; entries "
        "cannot be proved to auditors until one is signed");
  }
  InstallSignalHandlers();
  auto stats = RunIngest(**ledger, o, g_stop);
  if (!stats) return Report(stats.error());
  std::printf(
      "ingest: %llu record(s) consumed, %llu entr(ies) appended (%llu accepted, %llu "
      "rejected), %llu redelivery(ies) skipped, %llu batch(es)\n",
      static_cast<unsigned long long>(stats->consumed),
      static_cast<unsigned long long>(stats->appended),
      static_cast<unsigned long long>(stats->accepted),
      static_cast<unsigned long long>(stats->rejected),
      static_cast<unsigned long long>(stats->skipped),
      static_cast<unsigned long long>(stats->batches));
  if (checkpointer) {
    std::printf("ingest: %llu checkpoint(s) signed, %llu delivered to %s\n",
                static_cast<unsigned long long>(stats->checkpoints),
                static_cast<unsigned long long>(stats->checkpoints_published),
                cfg->checkpoint_topic.c_str());
  }
  for (const auto& [reason, n] : stats->rejected_by_reason) {
    std::printf("  rejected %-20s %llu\n", reason.c_str(), static_cast<unsigned long long>(n));
  }
  if (!stats_json.empty()) {
    if (auto s = WriteIngestStats(stats_json, *stats); !s) return Report(s.error());
  }
  return 0;
}

// ---- verify, heads, summary

int RunVerify(const Common& common) {
  auto opened = OpenForReading(common);
  if (!opened) return Report(opened.error());
  const Config& cfg = opened->config;
  if (auto missing = MissingAnchors(cfg, "verify")) return Report(*missing);
  const Ledger& ledger = *opened->ledger;
  VerifyOptions o;
  o.trust_anchors = cfg.trust_anchors;
  o.threads = cfg.verify_threads;
  bool tty = ::isatty(STDERR_FILENO);
  if (tty)
    o.progress = [](uint64_t n) {
      std::fprintf(stderr, "\rverify: %llu entries", static_cast<unsigned long long>(n));
    };
  auto report = VerifyLedger(ledger, o);
  if (tty) std::fprintf(stderr, "\n");
  if (!report) return Report(report.error());
  if (!report->ok()) {
    std::printf("verify: FAILED at %s\n", report->first_problem->ToString().c_str());
    return kExitProblem;
  }
  std::printf("verify: OK: %llu entries in %zu partition(s), %llu signatures checked\n",
              static_cast<unsigned long long>(report->entries), report->heads.size(),
              static_cast<unsigned long long>(report->signatures));
  return 0;
}

// One line per partition: chain size, next offset, head entry hash and Merkle root.
int PrintHeads(const Ledger& ledger, const std::vector<PartitionHead>& heads) {
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Report(txn.error());
  for (const auto& h : heads) {
    auto root = merkle::Root(MerkleNodes(*txn, ledger.tables(), h.partition), h.size);
    if (!root) return Report(root.error());
    std::printf("partition %u size %llu next_offset %lld head %s merkle_root %s\n", h.partition,
                static_cast<unsigned long long>(h.size), static_cast<long long>(h.next_offset),
                HexEncode(AsBytes(h.head_hash)).c_str(), HexEncode(AsBytes(*root)).c_str());
  }
  return 0;
}

int RunHeads(const Common& common) {
  auto opened = OpenForReading(common);
  if (!opened) return Report(opened.error());
  const Ledger& ledger = *opened->ledger;
  auto heads = ledger.Heads();
  if (!heads) return Report(heads.error());
  return PrintHeads(ledger, *heads);
}

int RunSummary(const Common& common) {
  auto opened = OpenForReading(common);
  if (!opened) return Report(opened.error());
  const Ledger& ledger = *opened->ledger;
  auto s = Summarize(ledger);
  if (!s) return Report(s.error());
  std::printf("entries   %llu (accepted %llu, rejected %llu)\n",
              static_cast<unsigned long long>(s->entries),
              static_cast<unsigned long long>(s->accepted),
              static_cast<unsigned long long>(s->rejected));
  std::printf("by type  ");
  for (const auto& [t, n] : s->entries_by_type)
    std::printf(" %s=%llu", t.c_str(), static_cast<unsigned long long>(n));
  std::printf("\nrejected by reason:\n");
  for (const auto& [r, n] : s->rejected_by_reason) {
    std::printf("  %-22s %llu\n", r.c_str(), static_cast<unsigned long long>(n));
  }
  if (s->catalog) {
    std::printf("catalogue in force: %s (sha256 %s)\n", s->catalog->catalog.version().c_str(),
                HexEncode(AsBytes(s->catalog->hash)).c_str());
  }
  std::printf(
      "amounts (accepted entries) against caps:\n  %-10s %5s %5s %22s %22s %20s %20s %20s\n",
      "programme", "apps", "apprv", "approved", "paid", "clawed back", "largest approval",
      "cap per approval");
  auto row = [&](const std::string& name, const ProgrammeTotals& t) {
    std::string cap = "-";
    if (const v1::Programme* p = s->catalog ? s->catalog->Find(name) : nullptr) {
      int64_t c = p->kind() == v1::PROGRAMME_KIND_FIXED_REWARD ? p->fixed_fen() : p->cap_fen();
      cap = FormatFen(c) + (t.largest_approval_fen <= c ? "" : " EXCEEDED");
    }
    std::printf("  %-10s %5llu %5llu %22s %22s %20s %20s %20s\n", name.c_str(),
                static_cast<unsigned long long>(t.applications),
                static_cast<unsigned long long>(t.approvals), FormatFen(t.approved_fen).c_str(),
                FormatFen(t.paid_fen).c_str(), FormatFen(t.clawed_back_fen).c_str(),
                FormatFen(t.largest_approval_fen).c_str(), cap.c_str());
  };
  for (const auto& [p, t] : s->programmes)
    row(p, t);
  row("TOTAL", s->total);
  std::printf("heads:\n");
  return PrintHeads(ledger, s->heads);
}

// ---- demo-stream

int RunDemoStream(const std::string& keys_dir, const std::string& out_dir, int applicants,
                  uint64_t seed, const std::string& catalog_path) {
  DemoKeys keys;
  struct {
    DemoSigner signer;
    KeyFile* key;
  } wanted[] = {{DemoSigner::kAdmin, &keys.admin},       {DemoSigner::kPortal, &keys.portal},
                {DemoSigner::kDistrict, &keys.district}, {DemoSigner::kMunicipal, &keys.municipal},
                {DemoSigner::kTreasury, &keys.treasury}, {DemoSigner::kTreasury2, &keys.treasury2},
                {DemoSigner::kRogue, &keys.rogue}};
  for (auto& w : wanted) {
    auto k = ReadSecretKeyFile(fmt::format("{}/{}.key", keys_dir, DemoSignerName(w.signer)));
    if (!k) return Report(k.error());
    *w.key = *k;
  }
  DemoStreamOptions o;
  o.applicants = applicants;
  o.seed = seed;
  auto catalog = LoadCatalogText(catalog_path);
  if (!catalog) return Report(catalog.error());
  o.catalog = std::move(*catalog);
  auto steps = GenerateDemoStream(o, keys);
  std::filesystem::create_directories(out_dir);
  std::ofstream expected(out_dir + "/expected.tsv");
  expected << "step\tevent_id\texpected_reason\n";
  size_t total = 0;
  for (const auto& step : steps) {
    // Forged events cannot be signed by `produce`; they are written pre-signed.
    bool presigned = step.signer == DemoSigner::kForged;
    std::string path =
        fmt::format("{}/{}.{}ndjson", out_dir, step.name, presigned ? "signed." : "");
    std::ofstream f(path);
    for (const auto& pe : step.events) {
      if (presigned) {
        v1::SignedEvent se;
        G60_ASSERT(se.ParseFromString(SignDemoEvent(step, pe.event, keys)));
        f << ToJsonLine(se) << "\n";
      } else {
        f << ToJsonLine(pe.event) << "\n";
      }
      expected << step.name << "\t" << pe.event.event_id() << "\t" << ReasonName(pe.expected)
               << "\n";
    }
    total += step.events.size();
    std::printf("%s: %zu event(s)\n", path.c_str(), step.events.size());
  }
  std::printf("demo-stream: %zu events in %zu files, expected verdicts in %s/expected.tsv\n", total,
              steps.size(), out_dir.c_str());
  return 0;
}

// ---- catalog

Result<v1::Catalog> LoadCheckedCatalog(const std::string& path, const std::string& effective_from) {
  auto c = LoadCatalogText(path);
  if (!c) return Fail(c.error());
  if (!effective_from.empty()) c->set_effective_from(effective_from);
  if (auto problems = CheckCatalog(*c); !problems.empty()) {
    for (const auto& p : problems)
      std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
    return Fail(Error::InvalidArgument(fmt::format("{}: {} problem(s)", path, problems.size())));
  }
  return c;
}

int RunCatalogCheck(const std::string& path) {
  auto c = LoadCheckedCatalog(path, "");
  if (!c) return Report(c.error()) == kExitUsage ? kExitProblem : kExitOperating;
  std::string bytes = SerializeCatalog(*c);
  std::printf(
      "catalogue %s OK: %d programme(s), %d overlap group(s), valid from %s for %u year(s), "
      "sha256 %s\n",
      c->version().c_str(), c->programmes_size(), c->overlap_groups_size(),
      c->effective_from().c_str(), c->validity_years(), HexEncode(AsBytes(Sha256(bytes))).c_str());
  return 0;
}

std::string KindName(v1::ProgrammeKind k) {
  const std::string& full = v1::ProgrammeKind_Name(k);
  return full.size() > 15 ? full.substr(15) : full;  // drop PROGRAMME_KIND_
}

int RunCatalogShow(const std::string& path) {
  auto c = LoadCheckedCatalog(path, "");
  if (!c) return Report(c.error());
  std::printf("catalogue %s, valid from %s for %u year(s)\n", c->version().c_str(),
              c->effective_from().c_str(), c->validity_years());
  std::printf("%-10s %-9s %-16s %6s %22s %22s  %s\n", "programme", "level", "kind", "ratio",
              "cap per approval", "yearly/window cap", "flags");
  for (const auto& p : c->programmes()) {
    std::string flags;
    if (p.staged()) flags += "staged ";
    if (p.once_per_applicant()) flags += "once ";
    if (p.example()) flags += "EXAMPLE ";
    int64_t running = p.yearly_cap_fen() ? p.yearly_cap_fen() : p.window_cap_fen();
    std::string cap = p.kind() == v1::PROGRAMME_KIND_FIXED_REWARD ? "= " + FormatFen(p.fixed_fen())
                                                                  : FormatFen(p.cap_fen());
    std::printf("%-10s %-9s %-16s %3u.%02u%% %22s %22s  %s%s\n", p.id().c_str(),
                p.level() == v1::LEVEL_MUNICIPAL ? "municipal" : "district",
                KindName(p.kind()).c_str(), p.ratio_bp() / 100, p.ratio_bp() % 100, cap.c_str(),
                running ? FormatFen(running).c_str() : "-", flags.c_str(), p.name().c_str());
    for (const auto& t : p.tiers()) {
      std::printf("%-10s   tier: from %s -> %s\n", "", FormatFen(t.threshold_fen()).c_str(),
                  FormatFen(t.amount_fen()).c_str());
    }
  }
  std::printf("overlap groups:\n");
  for (const auto& g : c->overlap_groups()) {
    std::string members;
    for (const auto& id : g.programmes())
      members += (members.empty() ? "" : ", ") + id;
    std::printf("  %-7s %-9s %s%s\n", g.id().c_str(),
                g.mode() == v1::OverlapGroup::MODE_CO_FUNDED ? "co-funded" : "exclusive",
                members.c_str(),
                g.mode() == v1::OverlapGroup::MODE_CO_FUNDED
                    ? fmt::format(" (together at most {}.{:02d}% and {})", g.ratio_bp() / 100,
                                  g.ratio_bp() % 100, FormatFen(g.cap_fen()))
                          .c_str()
                    : "");
  }
  return 0;
}

int RunCatalogPublish(const Common& common, const std::string& path, const std::string& key_file,
                      const std::string& effective_from) {
  auto cfg = common.Load();
  if (!cfg) return Report(cfg.error());
  auto c = LoadCheckedCatalog(path, effective_from);
  if (!c) return Report(c.error());
  auto key = ReadSecretKeyFile(key_file);
  if (!key) return Report(key.error());
  std::string bytes = SerializeCatalog(*c);
  std::string hash = HexEncode(AsBytes(Sha256(bytes)));
  v1::Event e;
  e.set_event_id(fmt::format("catalog-{}-{}", c->version(), hash.substr(0, 16)));
  e.set_occurred_at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
  e.mutable_catalog_published()->set_catalog(bytes);
  ProducerOptions po;
  po.bootstrap = cfg->bootstrap;
  po.topic = cfg->topic;
  po.kafka = cfg->producer_properties;
  auto producer = Producer::Create(po);
  if (!producer) return Report(producer.error());
  if (auto s = (*producer)->SendToAll(SignEvent(e, *key), e.event_id()); !s)
    return Report(s.error());
  auto summary = (*producer)->Flush();
  if (!summary) return Report(summary.error());
  for (const auto& f : summary->failures) {
    std::fprintf(stderr, "failed: %s: %s\n", f.label.c_str(), f.error.c_str());
  }
  std::printf("published catalogue %s (sha256 %s) as event %s to %llu partition(s)\n",
              c->version().c_str(), hash.c_str(), e.event_id().c_str(),
              static_cast<unsigned long long>(summary->delivered));
  return summary->failures.empty() ? 0 : kExitProblem;
}

int RunBenchVerb(const BenchOptions& options) {
  auto report = RunBench(options);
  if (!report) return Report(report.error());
  PrintBench(*report);
  return 0;
}

}  // namespace
}  // namespace g60

// Every verb's standard output, checked once at the end: a write that failed (a full
// disk, a closed pipe with SIGPIPE ignored) makes the run fail, never exit 0 with part of
// its output missing (issue 13, item 4's kind).
int FinishOutput(int rc) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr,
                 "g60ledger: writing to standard output failed (%s): the output is incomplete\n",
                 std::strerror(errno));
    return rc == 0 ? g60::kExitOperating : rc;
  }
  return rc;
}

int main(int argc, char** argv) {
  using namespace g60;
  auto logger = spdlog::stderr_color_mt("g60ledger");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  // protobuf logs each string it parses that is not UTF-8. Such records are on the record
  // by design (rejected, with their reason), and an auditor reading `verify` would take
  // the log lines for a fault: the verbs say what matters themselves.
  google::protobuf::SetLogHandler(nullptr);

  CLI::App app{"g60ledger: a signed, hash-chained audit ledger for G60 subsidy disbursement"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "g60ledger 0.1.0");

  Common common;
  std::string role, out;
  auto* keygen =
      app.add_subcommand("keygen", "create an Ed25519 signing key (secret file 0600, FILE.pub)");
  keygen->add_option("--role", role, "role the key is meant for")->required();
  keygen->add_option("--out", out, "secret key file to create")->required();

  int brokers = 3, partitions = 8;
  std::string bootstrap_file;
  auto* broker =
      app.add_subcommand("broker", "run the development broker (in-memory mock Kafka cluster)");
  broker->add_option("--brokers", brokers, "number of brokers")->check(CLI::Range(1, 9));
  broker->add_option("--partitions", partitions, "partitions of g60.events")
      ->check(CLI::Range(1, 256));
  broker->add_option("--bootstrap-file", bootstrap_file,
                     "write the bootstrap address to this file");

  ProduceArgs pargs;
  auto* produce = app.add_subcommand("produce", "sign NDJSON events and produce them to Kafka");
  common.AddKafka(produce);
  produce
      ->add_option("--key", pargs.key_files,
                   "secret key file to sign with (repeatable: chosen by role)")
      ->allow_extra_args(false);
  produce->add_flag("--signed", pargs.signed_input,
                    "input lines are SignedEvent JSON, sent as they are");
  produce->add_option("--progress-every", pargs.progress_every,
                      "print progress every N events (0: never)");
  produce->add_option("--transactional-id", pargs.transactional_id,
                      "all or nothing: send every input in one Kafka transaction with this "
                      "transactional.id, committed only if every line is good and delivered "
                      "(shown on real Kafka; the development broker is not Kafka)");
  produce->add_flag("--send-rejected", pargs.send_rejected,
                    "send events even when produce can tell the ledger will reject them (a "
                    "payload missing, a field outside its rule, a key of another role): for "
                    "drills and tests that put rejections on the record");
  produce->add_option("inputs", pargs.inputs, "NDJSON files ('-' or none: standard input)");

  bool until_caught_up = false;
  auto* ingest =
      app.add_subcommand("ingest", "consume g60.events into the ledger (runs until stopped)");
  common.AddLedger(ingest);
  common.AddKafka(ingest);
  common.AddAnchors(ingest);
  ingest->add_flag("--until-caught-up", until_caught_up,
                   "stop once every partition is consumed to its end");
  bool assign_all = false;
  ingest->add_flag("--assign-all", assign_all,
                   "consume every partition directly, without consumer-group membership");
  std::string ingest_stats_json;
  ingest->add_option("--stats-json", ingest_stats_json,
                     "when it stops, write its counts, stage CPU seconds and peak RSS (JSON)");
  ingest->add_option("--map-size-mib", common.map_size_mib,
                     "LMDB map size (grow it when the map is full)");
  ingest->add_option("--metrics-listen", common.metrics_listen,
                     "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464)");

  auto* verify = app.add_subcommand("verify", "re-check every entry, hash link and signature");
  common.AddLedger(verify);
  common.AddAnchors(verify);

  auto* heads = app.add_subcommand("heads", "print each partition's chain size and head hash");
  common.AddLedger(heads);

  auto* summary = app.add_subcommand("summary", "print entries, verdicts, amounts and heads");
  common.AddLedger(summary);

  std::string keys_dir, out_dir;
  int applicants = 300;
  uint64_t seed = 1;
  auto* demo = app.add_subcommand("demo-stream", "write the demo's event stream as NDJSON files");
  demo->add_option("--keys", keys_dir, "directory with admin.key, portal.key, ... rogue.key")
      ->required();
  demo->add_option("--out", out_dir, "output directory")->required();
  demo->add_option("--applicants", applicants, "number of applicants")
      ->check(CLI::Range(1, 1000000));
  demo->add_option("--seed", seed, "stream seed");
  std::string catalog_path;
  demo->add_option("--catalog", catalog_path,
                   "catalogue the stream follows (schemas/catalog.txtpb)")
      ->required();

  auto* catalog = app.add_subcommand("catalog", "check, show or publish the policy catalogue");
  catalog->require_subcommand(1);
  std::string cat_file, cat_key, effective_from;
  auto* cat_check = catalog->add_subcommand("check", "validate a catalogue file (text format)");
  cat_check->add_option("file", cat_file, "catalogue file")->required();
  auto* cat_show = catalog->add_subcommand("show", "print a catalogue's programmes and groups");
  cat_show->add_option("file", cat_file, "catalogue file")->required();
  auto* cat_publish = catalog->add_subcommand(
      "publish", "sign and produce a CatalogPublished event to every partition");
  cat_publish->add_option("file", cat_file, "catalogue file")->required();
  cat_publish->add_option("--key", cat_key, "admin secret key file")->required();
  cat_publish->add_option("--effective-from", effective_from,
                          "validity start YYYY-MM-DD (China Standard Time), overriding the file's");
  common.AddKafka(cat_publish);

  BenchOptions bench_options;
  bench_options.work_dir = "var/bench";
  bench_options.catalog_path = "schemas/catalog.txtpb";
  auto* bench = app.add_subcommand(
      "bench", "measure the verify bound, ingest, verify and latency; print ratios to the bound");
  bench->add_option("--events", bench_options.events, "business events in the stream")
      ->check(CLI::Range(uint64_t{1000}, uint64_t{10000000}));
  bench->add_option("--threads", bench_options.threads, "threads (0: one per core)");
  bench->add_option("--dir", bench_options.work_dir, "work directory for the durable ledger");
  bench
      ->add_option("--bound-seconds", bench_options.bound_seconds,
                   "how long each of the five measurements of the bound runs")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 60.0));
  bench->add_option("--latency-seconds", bench_options.latency_seconds,
                    "seconds of paced production for the latency figure");
  bench
      ->add_option("--latency-rate", bench_options.latency_rate,
                   "events/s of the latency phase (default: half the bound)")
      ->check(CLI::Range(1.0, 1e7));
  bench->add_option("--catalog", bench_options.catalog_path, "catalogue the stream follows");
  bench->add_flag("--keep", bench_options.keep, "keep the ledger afterwards");
  bench
      ->add_option("--batch-max-messages", bench_options.batch_max_messages,
                   "ingest: entries per LMDB transaction, at most (as [ingest])")
      ->check(CLI::Range(1u, 1000000u));
  bench
      ->add_option("--batch-max-ms", bench_options.batch_max_ms,
                   "ingest: how long a batch may wait to fill (as [ingest])")
      ->check(CLI::Range(1u, 60000u));
  bench->add_option("--kafka", bench_options.kafka_bootstrap,
                    "also run produce, ingest and latency on this real Kafka cluster "
                    "(HOST:PORT,...), on a topic of its own; its brokers are other processes");
  std::string bench_kafka_config;
  bench->add_option("--kafka-config", bench_kafka_config,
                    "ledger configuration whose [kafka.consumer] settings (TLS, SASL) the "
                    "real-Kafka run uses");
  bool bench_queries = false;
  bench->add_flag("--queries", bench_queries,
                  "instead: build a ledger of --events entries directly and time the queries "
                  "(applicant history, proof bundle, programme utilisation)");

  AuditVerbs audit_verbs(app, common);
  BackupVerbs backup_verbs(app, common);
  QueryVerbs query_verbs(app, common);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  const int status = [&]() -> int {
    if (*keygen) return RunKeygen(role, out);
    if (*broker) return RunBroker(brokers, partitions, bootstrap_file);
    if (*produce) return RunProduce(common, pargs);
    if (*ingest) return RunIngestVerb(common, until_caught_up, assign_all, ingest_stats_json);
    if (*verify) return RunVerify(common);
    if (*heads) return RunHeads(common);
    if (*summary) return RunSummary(common);
    if (*demo) return RunDemoStream(keys_dir, out_dir, applicants, seed, catalog_path);
    if (*bench && bench_queries) {
      QueryBenchOptions qo;
      qo.entries = bench_options.events;
      qo.work_dir = bench_options.work_dir;
      qo.catalog_path = bench_options.catalog_path;
      qo.keep = bench_options.keep;
      return RunQueryBench(qo);
    }
    if (*bench) {
      if (!bench_kafka_config.empty()) {
        auto c = LoadConfig(bench_kafka_config);
        if (!c) return Report(c.error());
        bench_options.kafka_properties = c->consumer_properties;
      }
      return RunBenchVerb(bench_options);
    }
    if (*cat_check) return RunCatalogCheck(cat_file);
    if (*cat_show) return RunCatalogShow(cat_file);
    if (*cat_publish) return RunCatalogPublish(common, cat_file, cat_key, effective_from);
    if (auto rc = audit_verbs.Run()) return *rc;
    if (auto rc = backup_verbs.Run()) return *rc;
    if (auto rc = query_verbs.Run()) return *rc;
    return kExitUsage;
  }();
  return FinishOutput(status);
}
