#include "ops/kafka_admin.h"

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <memory>
#include <thread>

namespace g60 {

namespace {

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using Queue = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using Event = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

Result<Handle> Connect(const KafkaAdminOptions& o) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Fail(Error::InvalidArgument(fmt::format("Kafka setting {}={}: {}", k, v, err)));
    }
    return {};
  };
  Status s = set("bootstrap.servers", o.bootstrap);
  for (auto it = o.kafka.begin(); s && it != o.kafka.end(); ++it)
    s = set(it->first, it->second);
  if (!s) {
    rd_kafka_conf_destroy(conf);
    return Fail(s.error());
  }
  // rd_kafka_new takes the configuration only when it succeeds.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return Fail(Error::InvalidArgument(fmt::format("creating the Kafka admin client: {}", err)));
  }
  return Handle(rk);
}

// Waits for the admin result event of one request and returns it, or the request error.
Result<Event> Await(rd_kafka_queue_t* q, int timeout_ms, const std::string& what) {
  Event ev(rd_kafka_queue_poll(q, timeout_ms + 5000));
  if (!ev) return Fail(Error::Unavailable(fmt::format("{}: no answer from Kafka", what)));
  if (rd_kafka_event_error(ev.get())) {
    return Fail(
        Error::Unavailable(fmt::format("{}: {}", what, rd_kafka_event_error_string(ev.get()))));
  }
  return ev;
}

Status TopicResult(const rd_kafka_topic_result_t* r, const std::string& what,
                   bool ignore_unknown = false, bool ignore_exists = false) {
  rd_kafka_resp_err_t e = rd_kafka_topic_result_error(r);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  if (ignore_unknown && e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return {};
  if (ignore_exists && e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) return {};
  const char* msg = rd_kafka_topic_result_error_string(r);
  std::string m = fmt::format("{}: {}", what, msg ? msg : rd_kafka_err2str(e));
  if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
      e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
    return Fail(Error::PermissionDenied(m));
  }
  return Fail(Error::FailedPrecondition(m));
}

// Until the metadata of `topic` shows `partitions` partitions, each with a leader.
Status AwaitPartitions(rd_kafka_t* rk, const std::string& topic, int partitions, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  while (true) {
    const rd_kafka_metadata_t* md = nullptr;
    bool ready = false;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          md->topics[0].partition_cnt == partitions) {
        ready = true;
        for (int i = 0; i < partitions; ++i)
          ready = ready && md->topics[0].partitions[i].leader >= 0;
      }
      rd_kafka_metadata_destroy(md);
    }
    if (ready) break;
    if (std::chrono::steady_clock::now() > deadline) {
      rd_kafka_topic_destroy(rkt);
      return Fail(Error::Unavailable(
          fmt::format("topic {} did not show {} partitions with leaders", topic, partitions)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  rd_kafka_topic_destroy(rkt);
  return {};
}

}  // namespace

Status CreateTopic(const KafkaAdminOptions& o, const std::string& topic, int partitions,
                   int replication, const std::map<std::string, std::string>& configs) {
  auto rk = Connect(o);
  if (!rk) return Fail(rk.error());
  char err[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, err, sizeof err);
  if (!nt) return Fail(Error::InvalidArgument(fmt::format("topic {}: {}", topic, err)));
  for (const auto& [k, v] : configs) {
    if (rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_NewTopic_destroy(nt);
      return Fail(Error::InvalidArgument(fmt::format("topic {}: config {}={}", topic, k, v)));
    }
  }
  Queue q(rd_kafka_queue_new(rk->get()));
  rd_kafka_AdminOptions_t* ao =
      rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, o.timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(rk->get(), &nt, 1, ao, q.get());
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_NewTopic_destroy(nt);
  std::string what = fmt::format("creating topic {}", topic);
  auto ev = Await(q.get(), o.timeout_ms, what);
  if (!ev) return Fail(ev.error());
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i)
    G60_TRY(TopicResult(results[i], what));
  return AwaitPartitions(rk->get(), topic, partitions, o.timeout_ms);
}

Status AddPartitions(const KafkaAdminOptions& o, const std::string& topic, int total_partitions) {
  auto rk = Connect(o);
  if (!rk) return Fail(rk.error());
  char err[512];
  rd_kafka_NewPartitions_t* np = rd_kafka_NewPartitions_new(
      topic.c_str(), static_cast<size_t>(total_partitions), err, sizeof err);
  if (!np) return Fail(Error::InvalidArgument(fmt::format("topic {}: {}", topic, err)));
  Queue q(rd_kafka_queue_new(rk->get()));
  rd_kafka_CreatePartitions(rk->get(), &np, 1, nullptr, q.get());
  rd_kafka_NewPartitions_destroy(np);
  std::string what = fmt::format("adding partitions to {}", topic);
  auto ev = Await(q.get(), o.timeout_ms, what);
  if (!ev) return Fail(ev.error());
  size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreatePartitions_result_topics(
      rd_kafka_event_CreatePartitions_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i)
    G60_TRY(TopicResult(results[i], what));
  return AwaitPartitions(rk->get(), topic, total_partitions, o.timeout_ms);
}

Status DeleteTopic(const KafkaAdminOptions& o, const std::string& topic) {
  auto rk = Connect(o);
  if (!rk) return Fail(rk.error());
  rd_kafka_DeleteTopic_t* dt = rd_kafka_DeleteTopic_new(topic.c_str());
  Queue q(rd_kafka_queue_new(rk->get()));
  rd_kafka_DeleteTopics(rk->get(), &dt, 1, nullptr, q.get());
  rd_kafka_DeleteTopic_destroy(dt);
  std::string what = fmt::format("deleting topic {}", topic);
  auto ev = Await(q.get(), o.timeout_ms, what);
  if (!ev) return Fail(ev.error());
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i)
    G60_TRY(TopicResult(results[i], what, /*ignore_unknown=*/true));
  return {};
}

}  // namespace g60
