// The ingest daemon: Kafka consumer -> chunks decoded and verified as they arrive (all
// cores) -> rules and append (one writer thread, in partition order) -> one durable LMDB
// transaction per batch, holding the entries, the state and the consumed offsets
// together (docs/design.md, "Parallel signature checks, one writer, streaming").
//
// Exactly-once comes from the ledger, not from Kafka: on every assignment the consumer
// seeks each partition to the next offset stored in the ledger, and a record below it
// is skipped. Kafka's committed offsets are written after each batch for monitoring
// only. Offsets are never reset automatically: if the broker no longer has the offset
// the ledger needs (retention, the development broker's size limit), ingest stops with
// an error rather than skip data.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "consumers/metrics.h"
#include "ledger/checkpoint.h"
#include "ledger/store.h"

namespace g60 {

struct IngestOptions {
  std::string bootstrap;
  std::string topic = "g60.events";
  std::string group_id = "g60ledger-ingest";
  bool until_caught_up = false;  // stop once every assigned partition is at its end
  // Consume every partition of the topic directly (assign, no consumer-group membership):
  // for a single ingest per topic, where a restart needs no rebalance. The group id is
  // then used only for the monitoring commits.
  bool assign_all = false;
  uint32_t batch_max_messages = 5000;        // entries per LMDB transaction, at most
  uint32_t batch_max_ms = 250;               // how long a batch may wait to fill
  uint32_t verify_threads = 0;               // 0 = one per core
  std::map<std::string, std::string> kafka;  // more librdkafka consumer properties
  IngestMetrics* metrics = nullptr;          // counts into these when set (not owned)
  // Signs checkpoints when set (not owned): in each batch that makes them due, when idle
  // for the configured interval, and for everything ingested when ingest stops.
  Checkpointer* checkpointer = nullptr;
  // Each checkpoint issued is produced here (key: its origin; value: the signed note),
  // and each partition's latest once at start, so auditors keep copies. "" = not produced.
  std::string checkpoint_topic;
  std::map<std::string, std::string> producer_kafka;  // more librdkafka producer properties
  // Called after each durable commit, once per chunk of the batch, with the chunk's
  // records and their outcomes (benchmarks, latency probes). Runs on the writer thread:
  // keep it short.
  std::function<void(const std::vector<Record>&, const std::vector<AppendOutcome>&)> on_commit;
};

struct IngestStats {
  uint64_t consumed = 0;  // records received from Kafka
  uint64_t appended = 0;  // entries written
  uint64_t skipped = 0;   // redeliveries below the stored offset
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t batches = 0;
  uint64_t checkpoints = 0;            // signed and stored
  uint64_t checkpoints_published = 0;  // acknowledged by the checkpoint topic
  std::map<std::string, uint64_t> rejected_by_reason;
  // From the first record received to the last commit: the time spent ingesting,
  // without the consumer group's start-up.
  double busy_seconds = 0;
  // CPU time of each stage, summed over its threads: decoding and checking signatures
  // (the verifier pool), deciding, appending and committing (the writer thread), and
  // receiving records from librdkafka and cutting chunks (the consumer thread).
  // librdkafka's own threads are not counted here.
  double verify_cpu_seconds = 0;
  double write_cpu_seconds = 0;
  double consume_cpu_seconds = 0;
  // Wall time the writer spent committing batches (LMDB's page writes and fdatasync),
  // in which it appends nothing.
  double commit_seconds = 0;
};

// Runs until `stop` becomes true (then commits what it has and returns), until caught
// up when asked, or until an error it cannot recover from.
Result<IngestStats> RunIngest(Ledger& ledger, const IngestOptions& options,
                              const std::atomic<bool>& stop);

}  // namespace g60
