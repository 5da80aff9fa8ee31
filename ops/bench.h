// `g60ledger bench`: measures, in one run and on this machine,
//   (a) the bound: libsodium Ed25519 verifications per second on all cores, over real
//       signed events;
//   (b) end to end: events already in the development broker ingested into a durable
//       ledger (events/s, from the first record received to the last commit);
//   (c) `verify` over the resulting ledger (entries/s), and the hash chain alone;
// plus produce-to-commit latency at half the bound (p50/p99), bytes on disk per entry
// and resident memory; with a real Kafka cluster (kafka_bootstrap) the broker-bound
// phases again on it. Prints the ratios to the bound last, one per line:
//   ratio ingest/bound 0.91
//   ratio kafka-ingest/bound 0.88   (with real Kafka)
// Figures are measurements of this run, never constants.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "consumers/ingest.h"
#include "ledger/status.h"

namespace g60 {

struct BenchOptions {
  uint64_t events = 100000;    // business events in the stream (control events add a few)
  unsigned threads = 0;        // 0: one per core
  std::string work_dir;        // where the ledger is written (durable, on disk)
  double latency_seconds = 5;  // how long the paced latency phase produces
  double bound_seconds = 1.5;  // how long each bound measurement runs
  double latency_rate = 0;     // events/s of the latency phase; 0: half the highest bound
  bool keep = false;           // keep the ledger afterwards
  std::string catalog_path;    // the catalogue the stream follows
  uint32_t batch_max_messages = IngestOptions{}.batch_max_messages;  // as [ingest]
  uint32_t batch_max_ms = IngestOptions{}.batch_max_ms;
  // Also run the produce, ingest and latency phases on a real Apache Kafka cluster (its
  // brokers in their own processes), on a topic the bench creates and deletes, with the
  // same stream and partition count. "" = the development broker only.
  std::string kafka_bootstrap;
  std::map<std::string, std::string> kafka_properties;  // librdkafka security settings
};

// The phases that depend on the broker, run once on the development broker (in this
// process) and, when asked, once on real Kafka (outside it).
struct BrokerRun {
  std::string broker;  // "development broker (in process)" or "Apache Kafka at HOST:PORT"
  int partitions = 0;
  double produce_per_s = 0;
  double ingest_per_s = 0;
  double bound_ingest_per_s = 0;  // max(just before, just after) this run's ingest
  uint64_t entries = 0;
  uint64_t batches = 0;           // LMDB transactions of the ingest phase
  double ingest_cpu_seconds = 0;  // process CPU time (user + system) during the ingest phase
  double ingest_wall_seconds = 0;
  // Where the ingest's CPU went (IngestStats); the rest of ingest_cpu_seconds is
  // librdkafka's threads and, on the development broker, the broker itself.
  double ingest_verify_cpu_seconds = 0;
  double ingest_write_cpu_seconds = 0;
  double ingest_consume_cpu_seconds = 0;
  double ingest_commit_seconds = 0;  // wall time in commits
  double rss_before_ingest_mib = 0;
  double rss_peak_ingest_mib = 0;  // this process's peak during the ingest phase
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  double latency_rate_per_s = 0;  // the paced rate the latency was measured at
  uint64_t latency_samples = 0;
  uint64_t latency_batches = 0;  // LMDB transactions of the latency phase
};

struct BenchReport {
  // The machine's speed drifts by a third within seconds (a shared VM), so each ratio
  // is taken against the bound measured just before and just after its own phase, and
  // the higher of the two, so that a slow moment cannot flatter it.
  double bound_per_s = 0;         // the highest of all the bound measurements
  double bound_verify_per_s = 0;  // max(just before, just after) verify
  std::string bounds;             // every bound measurement, in order
  unsigned threads = 0;
  BrokerRun dev;                   // on the development broker
  std::optional<BrokerRun> kafka;  // on real Kafka, when asked
  // Over the development broker's ledger:
  double verify_per_s = 0;
  double chain_per_s = 0;
  double audit_per_s = 0;  // g60ledger audit over the same ledger
  std::string audit_stages;
  double bytes_per_entry = 0;
  double audit_check_cpu_seconds = 0;  // the audit's replay (AuditReport)
  double audit_apply_cpu_seconds = 0;
};

Result<BenchReport> RunBench(const BenchOptions& options);
// Prints the report, the ratios last.
void PrintBench(const BenchReport& report, std::FILE* out = stdout);

}  // namespace g60
