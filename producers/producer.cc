#include "producers/producer.h"

#include <fmt/format.h>
#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <thread>

#include "ledger/partitioner.h"
#include "producers/client_errors.h"

namespace g60 {

// Collects delivery reports. Called from Producer::poll/flush on the caller's thread.
class Producer::Reports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* label = static_cast<std::string*>(message.msg_opaque());
    if (message.err() == RdKafka::ERR_NO_ERROR) {
      ++summary.delivered;
    } else {
      summary.failures.push_back({label ? *label : std::string("?"), message.errstr()});
    }
    delete label;
    --in_flight;
  }
  DeliverySummary summary;
  int64_t in_flight = 0;
};

namespace {
Status Set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string err;
  if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK) {
    return Fail(Error::InvalidArgument(fmt::format("Kafka setting {}={}: {}", name, value, err)));
  }
  return {};
}

// A transactional call's failure, in the words an operator needs: fatal (this producer
// was fenced by a newer one of the same id, or the cluster refused transactions) or
// retriable.
Error TransactionError(const std::string& what, const RdKafka::Error& e) {
  std::string hint;
  if (e.code() == RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED) {
    hint = " (the producer principal needs Write on this TransactionalId)";
  } else if (e.code() == RdKafka::ERR__FENCED || e.code() == RdKafka::ERR_PRODUCER_FENCED ||
             e.code() == RdKafka::ERR_INVALID_PRODUCER_EPOCH) {
    hint = " (another producer started with the same transactional id and fenced this one)";
  } else if (e.code() == RdKafka::ERR__NOT_IMPLEMENTED ||
             e.code() == RdKafka::ERR_COORDINATOR_NOT_AVAILABLE) {
    hint = " (this cluster does not offer transactions)";
  }
  std::string m = fmt::format("Kafka transaction: {}: {}{}", what, e.str(), hint);
  return e.is_fatal() || e.code() == RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
             ? Error::FailedPrecondition(std::move(m))
             : Error::Unavailable(std::move(m));
}

}  // namespace

Result<std::unique_ptr<Producer>> Producer::Create(const ProducerOptions& options) {
  if (options.bootstrap.empty()) {
    return Fail(
        Error::InvalidArgument("no Kafka bootstrap servers (--bootstrap or [kafka] bootstrap)"));
  }
  std::unique_ptr<Producer> p(new Producer());
  p->options_ = options;
  p->reports_ = std::make_unique<Reports>();
  p->errors_ = std::make_unique<ClientErrors>(options.kafka);
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  G60_TRY(Set(*conf, "bootstrap.servers", options.bootstrap));
  G60_TRY(Set(*conf, "enable.idempotence", "true"));
  G60_TRY(Set(*conf, "acks", "all"));
  // Send() chooses partitions itself (KafkaPartitionForKey); this is for anything else.
  G60_TRY(Set(*conf, "partitioner", "murmur2_random"));
  G60_TRY(Set(*conf, "delivery.timeout.ms", std::to_string(options.delivery_timeout_ms)));
  G60_TRY(Set(*conf, "linger.ms", "5"));
  G60_TRY(Set(*conf, "client.id", "g60ledger-producer"));
  if (!options.transactional_id.empty()) {
    G60_TRY(Set(*conf, "transactional.id", options.transactional_id));
    G60_TRY(Set(*conf, "transaction.timeout.ms", std::to_string(options.transaction_timeout_ms)));
  }
  for (const auto& [k, v] : options.kafka)
    G60_TRY(Set(*conf, k, v));
  std::string err;
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(p->reports_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Fail(Error::Internal("setting the delivery report callback: " + err));
  }
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(p->errors_.get()), err) !=
      RdKafka::Conf::CONF_OK) {
    return Fail(Error::Internal("setting the event callback: " + err));
  }
  p->producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!p->producer_) return Fail(Error::InvalidArgument("creating the Kafka producer: " + err));
  // No topic configuration of its own: one would replace the topic defaults set above.
  p->topic_.reset(RdKafka::Topic::create(p->producer_.get(), options.topic, nullptr, err));
  if (!p->topic_) return Fail(Error::InvalidArgument("topic " + options.topic + ": " + err));
  if (!options.transactional_id.empty()) {
    // librdkafka's mock cluster (cluster id "mockCluster<hex>") takes the transaction
    // requests but hands aborted records to read_committed consumers: all or nothing
    // would be a promise it cannot keep.
    if (p->producer_->clusterid(5000).rfind("mockCluster", 0) == 0) {
      return Fail(Error::FailedPrecondition(
          "produce --transactional-id needs a real Kafka cluster: the development broker "
          "accepts transactions but does not hide aborted records from the ingest"));
    }
    if (RdKafka::Error* e = p->producer_->init_transactions(options.flush_timeout_ms)) {
      std::unique_ptr<RdKafka::Error> owned(e);
      return Fail(TransactionError(
          fmt::format("initialising transactional id {}", options.transactional_id), *e));
    }
  }
  return p;
}

Status Producer::BeginTransaction() {
  G60_ASSERT(!options_.transactional_id.empty());
  if (RdKafka::Error* e = producer_->begin_transaction()) {
    std::unique_ptr<RdKafka::Error> owned(e);
    return Fail(TransactionError("beginning a transaction", *e));
  }
  return {};
}

Status Producer::CommitTransaction() {
  G60_ASSERT(!options_.transactional_id.empty());
  // Delivery reports first: a message that failed must abort the whole transaction.
  auto flushed = Flush();
  if (!flushed) {
    (void)AbortTransaction();
    return Fail(flushed.error().Context("transaction aborted"));
  }
  reports_->summary = *flushed;  // kept for the caller's next Flush()
  if (!flushed->failures.empty()) {
    G60_TRY(AbortTransaction());
    return Fail(Error::Unavailable(fmt::format(
        "{} message(s) of the transaction failed (first: {}: {}); the transaction was "
        "aborted, so none of its messages will be ingested",
        flushed->failures.size(), flushed->failures[0].label, flushed->failures[0].error)));
  }
  if (RdKafka::Error* e = producer_->commit_transaction(options_.flush_timeout_ms)) {
    std::unique_ptr<RdKafka::Error> owned(e);
    Error failure = TransactionError("committing the transaction", *e);
    if (e->txn_requires_abort()) {
      (void)AbortTransaction();
      return Fail(Error::Unavailable(failure.message() +
                                     "; the transaction was aborted, so none of its messages will "
                                     "be ingested"));
    }
    return Fail(failure);
  }
  return {};
}

Status Producer::AbortTransaction() {
  G60_ASSERT(!options_.transactional_id.empty());
  if (RdKafka::Error* e = producer_->abort_transaction(options_.flush_timeout_ms)) {
    std::unique_ptr<RdKafka::Error> owned(e);
    return Fail(TransactionError("aborting the transaction", *e));
  }
  return {};
}

Producer::~Producer() {
  if (producer_) {
    // Serve what is left so no callback outlives reports_; bounded, like librdkafka's examples.
    producer_->flush(5000);
    topic_.reset();
    producer_.reset();
  }
}

Result<int32_t> Producer::PartitionCount() {
  if (partitions_ > 0) return partitions_;
  RdKafka::Metadata* raw = nullptr;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    RdKafka::ErrorCode rc = producer_->metadata(false, topic_.get(), &raw, 5000);
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (rc == RdKafka::ERR_NO_ERROR && md->topics()->size() == 1) {
      const auto* t = (*md->topics())[0];
      if (t->err() == RdKafka::ERR_NO_ERROR && !t->partitions()->empty()) {
        errors_->Connected();
        partitions_ = static_cast<int32_t>(t->partitions()->size());
        return partitions_;
      }
      rc = t->err();
    }
    producer_->poll(0);  // serves the event callback
    if (auto refused = errors_->Refused()) return Fail(*refused);
    if (rc == RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED) {
      return Fail(Error::PermissionDenied(fmt::format(
          "the Kafka cluster refuses this client access to topic {} "
          "(TOPIC_AUTHORIZATION_FAILED): grant the producer principal Write and Describe on it",
          options_.topic)));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::string transport = errors_->LastTransportError();
      return Fail(Error::Unavailable(fmt::format(
          "no metadata for topic {} from {}: {}{}", options_.topic, options_.bootstrap,
          RdKafka::err2str(rc), transport.empty() ? "" : " (last: " + transport + ")")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status Producer::Enqueue(int32_t partition, std::string_view key, std::string_view value,
                         std::string label, bool null_key) {
  // A keyed record's key is never null, even when empty: Kafka hashes "" like any key.
  static const char kEmpty = 0;
  const char* key_data = null_key ? nullptr : (key.empty() ? &kEmpty : key.data());
  auto* opaque = new std::string(std::move(label));
  while (true) {
    RdKafka::ErrorCode rc = producer_->produce(
        topic_.get(), partition, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
        value.size(), key_data, key.size(), opaque);
    if (rc == RdKafka::ERR_NO_ERROR) {
      ++reports_->in_flight;
      producer_->poll(0);
      return {};
    }
    if (rc == RdKafka::ERR__QUEUE_FULL) {
      producer_->poll(100);  // serve delivery reports until there is room
      if (auto refused = errors_->Refused()) {
        delete opaque;
        return Fail(*refused);
      }
      continue;
    }
    std::string label_copy = *opaque;
    delete opaque;
    return Fail(Error::InvalidArgument(
        fmt::format("cannot produce {}: {}", label_copy, RdKafka::err2str(rc))));
  }
}

Status Producer::Send(std::string_view key, std::string_view value, std::string label) {
  // The partition is chosen here, by the same function the ledger checks records with,
  // rather than by librdkafka's partitioner setting: a topic handle created with its own
  // topic configuration silently falls back to librdkafka's default (CRC32), which is
  // how an earlier version sent applicants to other partitions than Java clients do.
  auto n = PartitionCount();
  if (!n) return Fail(n.error());
  auto partition = static_cast<int32_t>(KafkaPartitionForKey(key, static_cast<uint32_t>(*n)));
  return Enqueue(partition, key, value, std::move(label), /*null_key=*/false);
}

Status Producer::SendToAll(std::string_view value, const std::string& label) {
  auto n = PartitionCount();
  if (!n) return Fail(n.error());
  for (int32_t p = 0; p < *n; ++p) {
    G60_TRY(Enqueue(p, {}, value, fmt::format("{} (partition {})", label, p), /*null_key=*/true));
  }
  return {};
}

Result<DeliverySummary> Producer::Flush() {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.flush_timeout_ms);
  while (reports_->in_flight > 0) {
    producer_->flush(1000);
    if (auto refused = errors_->Refused()) return Fail(*refused);
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(Error::Unavailable(fmt::format("{} message(s) still undelivered after {} ms",
                                                 reports_->in_flight, options_.flush_timeout_ms)));
    }
  }
  DeliverySummary out = std::move(reports_->summary);
  reports_->summary = {};
  return out;
}

}  // namespace g60
