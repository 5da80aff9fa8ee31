// Topic administration through the Kafka Admin API (librdkafka's C admin client), for
// the bench and tests that run against a real Apache Kafka cluster: create a topic,
// add partitions, delete it. Operators use Kafka's own tools (docs/kafka.md).
#pragma once

#include <map>
#include <string>

#include "ledger/status.h"

namespace g60 {

struct KafkaAdminOptions {
  std::string bootstrap;                     // bootstrap.servers
  std::map<std::string, std::string> kafka;  // more librdkafka properties (security)
  int timeout_ms = 30000;                    // each request, at most
};

// Creates `topic` with `partitions` partitions, `replication` replicas each (-1: the
// broker's default.replication.factor) and the given topic configs (retention.bytes,
// segment.bytes, ...). Waits until the cluster's metadata shows every partition.
Status CreateTopic(const KafkaAdminOptions& o, const std::string& topic, int partitions,
                   int replication, const std::map<std::string, std::string>& configs = {});

// Grows `topic` to `total_partitions` partitions (CreatePartitions; Kafka never shrinks).
Status AddPartitions(const KafkaAdminOptions& o, const std::string& topic, int total_partitions);

// Deletes `topic`; a topic that does not exist is not an error.
Status DeleteTopic(const KafkaAdminOptions& o, const std::string& topic);

}  // namespace g60
