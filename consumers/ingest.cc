#include "consumers/ingest.h"

#include <fmt/format.h>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

namespace g60 {

namespace {

using Clock = std::chrono::steady_clock;

Status Set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string err;
  if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK) {
    return Fail(Error::InvalidArgument(fmt::format("Kafka setting {}={}: {}", name, value, err)));
  }
  return {};
}

// Seeks every newly assigned partition to the offset the ledger stores for it. This
// is the "offsets outside Kafka" pattern: the sink's own offsets are the truth.
class Rebalancer : public RdKafka::RebalanceCb {
 public:
  Rebalancer(Ledger& ledger, std::string topic) : ledger_(ledger), topic_(std::move(topic)) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (auto* tp : partitions) {
        auto head = ledger_.Head(static_cast<uint32_t>(tp->partition()));
        if (!head) {
          error = head.error();
          tp->set_offset(RdKafka::Topic::OFFSET_INVALID);
          continue;
        }
        // A fresh partition starts at offset 0 exactly, not "beginning": if the broker
        // no longer has offset 0 we must hear about it.
        tp->set_offset(*head ? (*head)->next_offset : 0);
        assigned.insert(tp->partition());
        at_end.erase(tp->partition());
      }
      if (Cooperative(consumer)) {
        if (RdKafka::Error* e = consumer->incremental_assign(partitions)) {
          error = Error::Unavailable("assigning partitions: " + e->str());
          delete e;
        }
      } else if (auto rc = consumer->assign(partitions); rc != RdKafka::ERR_NO_ERROR) {
        error = Error::Unavailable(std::string("assigning partitions: ") + RdKafka::err2str(rc));
      }
      spdlog::info("assigned {} partition(s) of {}", partitions.size(), topic_);
    } else if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
      for (auto* tp : partitions) {
        assigned.erase(tp->partition());
        at_end.erase(tp->partition());
      }
      if (Cooperative(consumer)) {
        if (RdKafka::Error* e = consumer->incremental_unassign(partitions)) delete e;
      } else {
        consumer->unassign();
      }
      spdlog::info("revoked {} partition(s) of {}", partitions.size(), topic_);
    } else {
      error = Error::Unavailable(std::string("rebalance failed: ") + RdKafka::err2str(err));
    }
  }

  std::set<int32_t> assigned;
  std::set<int32_t> at_end;  // partitions whose end was reached with nothing newer
  std::optional<Error> error;

 private:
  static bool Cooperative(RdKafka::KafkaConsumer* consumer) {
    return consumer->rebalance_protocol() == "COOPERATIVE";
  }

  Ledger& ledger_;
  std::string topic_;
};

// Runs Precheck over a batch on all threads.
void PrecheckAll(const Ledger& ledger, const std::vector<Record>& records,
                 std::vector<Prechecked>& out, unsigned threads) {
  out.resize(records.size());
  PublicKeyLookup lookup = [&ledger](std::string_view key_id) {
    return ledger.PublicKeyOf(key_id);
  };
  std::atomic<size_t> next{0};
  constexpr size_t kChunk = 64;
  auto work = [&] {
    while (true) {
      size_t begin = next.fetch_add(kChunk);
      if (begin >= records.size()) return;
      size_t end = std::min(records.size(), begin + kChunk);
      for (size_t i = begin; i < end; ++i)
        out[i] = Precheck(records[i].value, lookup);
    }
  };
  std::vector<std::thread> pool;
  unsigned extra = records.size() > kChunk ? threads - 1 : 0;
  for (unsigned t = 0; t < extra; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
}

}  // namespace

Result<IngestStats> RunIngest(Ledger& ledger, const IngestOptions& options,
                              const std::atomic<bool>& stop) {
  if (options.bootstrap.empty()) {
    return Fail(
        Error::InvalidArgument("no Kafka bootstrap servers (--bootstrap or [kafka] bootstrap)"));
  }
  unsigned threads = options.verify_threads ? options.verify_threads
                                            : std::max(1u, std::thread::hardware_concurrency());
  Rebalancer rebalancer(ledger, options.topic);
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  G60_TRY(Set(*conf, "bootstrap.servers", options.bootstrap));
  G60_TRY(Set(*conf, "group.id", options.group_id));
  G60_TRY(Set(*conf, "client.id", "g60ledger-ingest"));
  G60_TRY(Set(*conf, "enable.auto.commit", "false"));
  G60_TRY(Set(*conf, "enable.auto.offset.store", "false"));
  G60_TRY(Set(*conf, "auto.offset.reset", "error"));
  G60_TRY(Set(*conf, "enable.partition.eof", "true"));
  G60_TRY(Set(*conf, "isolation.level", "read_committed"));
  G60_TRY(Set(*conf, "partition.assignment.strategy", "cooperative-sticky"));
  for (const auto& [k, v] : options.kafka)
    G60_TRY(Set(*conf, k, v));
  std::string err;
  if (conf->set("rebalance_cb", &rebalancer, err) != RdKafka::Conf::CONF_OK) {
    return Fail(Error::Internal("setting the rebalance callback: " + err));
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) return Fail(Error::InvalidArgument("creating the Kafka consumer: " + err));
  if (auto rc = consumer->subscribe({options.topic}); rc != RdKafka::ERR_NO_ERROR) {
    return Fail(Error::InvalidArgument(
        fmt::format("subscribing to {}: {}", options.topic, RdKafka::err2str(rc))));
  }
  spdlog::info("ingest: consuming {} from {} as group {}", options.topic, options.bootstrap,
               options.group_id);

  IngestStats stats;
  std::vector<Record> records;
  std::vector<Prechecked> prechecked;
  records.reserve(options.batch_max_messages);
  std::optional<Error> failure;
  bool commit_failed = false;  // then the batch in hand cannot be committed either

  auto commit_batch = [&]() -> Status {
    if (records.empty()) return {};
    PrecheckAll(ledger, records, prechecked, threads);
    auto batch = ledger.BeginBatch();
    if (!batch) return Fail(batch.error());
    std::map<int32_t, int64_t> next_offsets;
    for (size_t i = 0; i < records.size(); ++i) {
      auto outcome = batch->Append(records[i], prechecked[i]);
      if (!outcome) {
        return Fail(outcome.error().Context(
            fmt::format("appending the record at {}/{}", records[i].partition, records[i].offset)));
      }
      if (!outcome->appended) {
        ++stats.skipped;
        continue;
      }
      ++stats.appended;
      if (outcome->verdict == ledger::v1::VERDICT_ACCEPTED) {
        ++stats.accepted;
      } else {
        ++stats.rejected;
        ++stats.rejected_by_reason[ReasonName(outcome->reason)];
      }
      next_offsets[static_cast<int32_t>(records[i].partition)] = records[i].offset + 1;
    }
    G60_TRY(batch->Commit());
    ++stats.batches;
    // Monitoring only: tell Kafka how far we are (the ledger holds the real offsets).
    std::vector<RdKafka::TopicPartition*> offsets;
    for (auto [p, o] : next_offsets)
      offsets.push_back(RdKafka::TopicPartition::create(options.topic, p, o));
    if (!offsets.empty()) consumer->commitAsync(offsets);
    RdKafka::TopicPartition::destroy(offsets);
    records.clear();
    return {};
  };

  auto batch_started = Clock::now();
  while (!failure) {
    if (stop.load()) break;
    if (rebalancer.error) {
      failure = *rebalancer.error;
      break;
    }
    int wait_ms =
        records.empty()
            ? 100
            : static_cast<int>(std::max<int64_t>(
                  0, options.batch_max_ms - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                Clock::now() - batch_started)
                                                .count()));
    std::unique_ptr<RdKafka::Message> msg(consumer->consume(wait_ms));
    bool flush = false;
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR: {
        if (records.empty()) batch_started = Clock::now();
        Record r;
        r.topic = msg->topic_name();
        r.partition = static_cast<uint32_t>(msg->partition());
        r.offset = msg->offset();
        r.timestamp_ms = msg->timestamp().timestamp;
        if (msg->key()) r.key = *msg->key();
        if (msg->payload()) r.value.assign(static_cast<const char*>(msg->payload()), msg->len());
        records.push_back(std::move(r));
        ++stats.consumed;
        rebalancer.at_end.erase(msg->partition());
        flush = records.size() >= options.batch_max_messages;
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
        flush = true;
        break;
      case RdKafka::ERR__PARTITION_EOF:
        rebalancer.at_end.insert(msg->partition());
        break;
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        failure = Error::DataLoss(fmt::format(
            "Kafka no longer has the offset the ledger needs for {} partition {} ({}): the "
            "records were deleted (retention, or the development broker's per-partition size "
            "limit) before they were ingested. Ingest stops rather than skip them; replay the "
            "missing events from their source into a new topic",
            options.topic, msg->partition(), msg->errstr()));
        break;
      default:
        if (msg->err() == RdKafka::ERR__FATAL || msg->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART ||
            msg->err() == RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED) {
          failure = Error::Unavailable(fmt::format("Kafka: {}", msg->errstr()));
        } else {
          // Ordinary errors are informational: librdkafka recovers by itself.
          spdlog::warn("kafka: {}", msg->errstr());
        }
        break;
    }
    if (failure) break;
    if (records.size() && (flush || Clock::now() - batch_started >=
                                        std::chrono::milliseconds(options.batch_max_ms))) {
      if (auto s = commit_batch(); !s) {
        failure = s.error();
        commit_failed = true;
        break;
      }
    }
    if (options.until_caught_up && records.empty() && !rebalancer.assigned.empty() &&
        rebalancer.at_end.size() == rebalancer.assigned.size()) {
      spdlog::info("ingest: caught up on {} partition(s)", rebalancer.assigned.size());
      break;
    }
  }
  // Records already consumed are good whatever stopped us: keep them, unless writing
  // them is what failed.
  if (!commit_failed) {
    if (auto s = commit_batch(); !s) {
      if (!failure)
        failure = s.error();
      else
        spdlog::error("committing the last batch: {}", s.error().ToString());
    }
  }
  consumer->close();
  if (failure) return Fail(*failure);
  return stats;
}

}  // namespace g60
