#include "ops/broker.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace g60 {

Result<std::unique_ptr<DevBroker>> DevBroker::Start(const BrokerOptions& options) {
  if (options.brokers < 1 || options.replication < 1 || options.replication > options.brokers) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} broker(s) with replication {}: need 1 <= replication <= brokers",
                    options.brokers, options.replication)));
  }
  std::unique_ptr<DevBroker> b(new DevBroker());
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return Fail(Error::Internal(errstr));
  }
  // rd_kafka_new takes the conf only when it succeeds.
  b->handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!b->handle_) {
    rd_kafka_conf_destroy(conf);
    return Fail(Error::Internal(fmt::format("creating the mock cluster's handle: {}", errstr)));
  }
  b->cluster_ = rd_kafka_mock_cluster_new(b->handle_, options.brokers);
  if (!b->cluster_) return Fail(Error::Internal("rd_kafka_mock_cluster_new failed"));
  for (const TopicSpec& t : options.topics) {
    if (t.partitions < 1) {
      return Fail(
          Error::InvalidArgument(fmt::format("topic {} needs at least one partition", t.name)));
    }
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(b->cluster_, t.name.c_str(), t.partitions, options.replication);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Fail(
          Error::Internal(fmt::format("creating topic {}: {}", t.name, rd_kafka_err2str(err))));
    }
  }
  return b;
}

DevBroker::~DevBroker() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_) rd_kafka_destroy(handle_);
}

std::string DevBroker::bootstrap() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

}  // namespace g60
