// The Kafka producer finance systems link against. Idempotent (enable.idempotence=true,
// acks=all) so that retries never reorder or duplicate within a partition; applicant
// events are keyed by applicant id (one applicant, one partition, one chain) with the
// Java-compatible murmur2 partitioner; control events (key grants and revocations) go
// to every partition so each partition's chain stands alone.
//
// Thread safety: one thread at a time per Producer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ledger/status.h"

namespace RdKafka {
class Producer;
class Topic;
}  // namespace RdKafka

namespace g60 {

class ClientErrors;

struct ProducerOptions {
  std::string bootstrap;  // bootstrap.servers
  std::string topic = "g60.events";
  int delivery_timeout_ms = 120000;          // a message not delivered by then fails
  int flush_timeout_ms = 180000;             // Flush() gives up after this long
  std::map<std::string, std::string> kafka;  // more librdkafka properties (e.g. security)
  // Non-empty: a transactional producer (Kafka transactions, KIP-98) with this
  // transactional.id; Create() runs init_transactions, which also fences an earlier
  // producer of the same id. All-or-nothing delivery is shown on real Kafka
  // (tests/kafka/topic_test.cc); with ACLs it needs Write on the TransactionalId.
  std::string transactional_id;
  int transaction_timeout_ms = 600000;  // the broker caps it (transaction.max.timeout.ms)
};

struct DeliveryFailure {
  std::string label;  // what the caller named the message (event id, input line)
  std::string error;
};

struct DeliverySummary {
  uint64_t delivered = 0;  // messages acknowledged by all in-sync replicas
  std::vector<DeliveryFailure> failures;
};

class Producer {
 public:
  static Result<std::unique_ptr<Producer>> Create(const ProducerOptions& options);
  ~Producer();

  // Number of partitions of the topic (from the cluster's metadata).
  Result<int32_t> PartitionCount();

  // Enqueues one keyed message to the partition Kafka's Java client would choose for
  // `key` (KafkaPartitionForKey, murmur2); waits (serving delivery reports) while the
  // local queue is full. `label` names the message in delivery failures.
  Status Send(std::string_view key, std::string_view value, std::string label);
  // Enqueues the value to every partition with an empty key (control events).
  Status SendToAll(std::string_view value, const std::string& label);

  // Waits for every delivery report; returns what was delivered and what failed
  // since the last Flush.
  Result<DeliverySummary> Flush();

  // Transactions (transactional_id set). Messages sent between Begin and Commit become
  // visible to read_committed consumers (the ingest) all together, or, after Abort or
  // a failed Commit, never. Commit flushes first; if any message failed it aborts and
  // says so. Errors name what the broker said.
  Status BeginTransaction();
  Status CommitTransaction();
  Status AbortTransaction();

 private:
  class Reports;
  Producer() = default;
  Status Enqueue(int32_t partition, std::string_view key, std::string_view value, std::string label,
                 bool null_key);

  ProducerOptions options_;
  std::unique_ptr<Reports> reports_;
  std::unique_ptr<ClientErrors> errors_;  // credentials refused, TLS failed: stop at once
  std::unique_ptr<RdKafka::Producer> producer_;
  std::unique_ptr<RdKafka::Topic> topic_;
  int32_t partitions_ = -1;
};

}  // namespace g60
