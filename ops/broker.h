// The development broker: librdkafka's mock cluster. It speaks the real Kafka protocol
// over loopback TCP, with several brokers, leaders, consumer groups and idempotent
// producers, but it keeps everything in memory (about 5 MiB per partition, older data
// is dropped), has no transactions and does not survive its process. It is for
// development and tests only; production points bootstrap.servers at a real Apache
// Kafka cluster and runs the same binaries unchanged.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ledger/status.h"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace g60 {

struct TopicSpec {
  std::string name;
  int partitions;
};

struct BrokerOptions {
  int brokers = 3;
  int replication = 3;
  std::vector<TopicSpec> topics = {{"g60.events", 8}, {"g60.checkpoints", 1}};
};

class DevBroker {
 public:
  static Result<std::unique_ptr<DevBroker>> Start(const BrokerOptions& options);
  ~DevBroker();
  DevBroker(const DevBroker&) = delete;
  DevBroker& operator=(const DevBroker&) = delete;

  // "127.0.0.1:port,127.0.0.1:port,..."
  std::string bootstrap() const;
  // For fault injection (rdkafka_mock.h): brokers down/up, latency, request errors.
  rd_kafka_mock_cluster_s* cluster() const { return cluster_; }

 private:
  DevBroker() = default;
  rd_kafka_s* handle_ = nullptr;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
};

}  // namespace g60
