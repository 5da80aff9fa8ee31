// The ingest pipeline in four stages, each a class with its contract above it:
//
//   KafkaSource (this thread) -> VerifierPool (all cores) -> Writer (one thread)
//                                                              -> CheckpointPublisher
//
// RunIngest, at the end of the file, wires them together and owns the shutdown order.
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

#include "ledger/bytes.h"
#include "ledger/cpu_clock.h"
#include "ledger/entry.h"
#include "ledger/ordered_workers.h"
#include "producers/client_errors.h"
#include "producers/producer.h"

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

// Records cut from the consumer's stream, verified together, applied in order.
struct Chunk {
  std::vector<Record> records;
  std::vector<Prechecked> prechecked;
  bool flush = false;  // the consumer has nothing more for now: commit after this chunk
};

// What the consumer thread and the writer thread share. Counters are atomics; the
// writer's failure is published by `write_failed` after `write_failure` is set.
struct PipelineState {
  std::atomic<int64_t> queued_records{0};  // cut into chunks, not yet taken by the writer
  std::atomic<int64_t> first_record_ns{0};
  std::atomic<bool> consumer_done{false};
  std::atomic<int64_t> unsettled{0};  // chunks submitted and not yet committed (or empty)
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> write_failed{false};
  std::optional<Error> write_failure;
};

// ---- Stage 1: the Kafka consumer.
//
// Owns the librdkafka consumer. Open() binds the ledger to the topic, its name and its
// partition count (recording them in a new ledger, refusing another topic or count),
// then subscribes to the consumer group, or assigns every partition directly with
// `assign_all`. Every partition assigned is sought to the offsets the ledger stores for
// it: the ledger's offsets are the truth, Kafka's committed offsets are for monitoring
// only ("storing offsets outside Kafka"). It is sought one record early, and that record
// must be the ledger's last entry again (Recheck) before the pipeline skips it as a
// redelivery. Poll() returns one record at a time, or an idle signal, or an Error that
// ends ingest: the broker no longer has an offset the ledger needs, the topic is not the
// one the ledger consumed, the partition count changed, a permission or credential was
// refused, the client failed fatally. Poll() and Open() run on one thread; the writer thread
// calls CommitMonitoring() and Lag(), which librdkafka allows from any thread.
class KafkaSource : public RdKafka::RebalanceCb {
 public:
  // Waits for the cluster's first answer until `stop` (then returns nullptr: stopped
  // before anything was consumed).
  static Result<std::unique_ptr<KafkaSource>> Open(Ledger& ledger, const IngestOptions& options,
                                                   const std::atomic<bool>& stop);
  ~KafkaSource() override {
    if (consumer_) consumer_->close();
  }

  enum class Polled { kRecord, kTimedOut, kPartitionAtEnd, kFailed };
  // Waits up to `wait_ms` for the next record. kFailed leaves the reason in failure().
  Polled Poll(int wait_ms, Record& out);
  const std::optional<Error>& failure() const { return failure_; }
  // Every assigned partition is consumed to its end (and at least one is assigned).
  bool CaughtUp() const { return !assigned_.empty() && at_end_.size() >= assigned_.size(); }
  size_t assigned() const { return assigned_.size(); }

  // Tells Kafka how far the ledger is (monitoring only).
  void CommitMonitoring(const std::map<int32_t, int64_t>& next_offsets);
  // Records the broker holds beyond `next` in the partition, or nothing if unknown.
  std::optional<int64_t> Lag(int32_t partition, int64_t next);

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;

 private:
  KafkaSource(Ledger& ledger, const IngestOptions& options)
      : ledger_(ledger), options_(options), errors_(options.kafka) {}
  // The topic's partition count from the cluster's metadata. `before_assignment`: retry
  // up to `attempts` times, serving librdkafka's callbacks between attempts with a
  // consume() that can return no record because nothing is assigned yet. Once
  // partitions are assigned a consume() here would take a record from the pipeline, so
  // the later checks ask once and serve nothing. Returns 0 when `stop` became true first.
  Result<int32_t> TopicPartitionCount(int attempts, bool before_assignment,
                                      const std::atomic<bool>* stop = nullptr);
  Status AssignAll();
  Status CheckPartitionCountUnchanged();
  Error OffsetOutOfRange(int32_t partition, const std::string& detail);
  // Where to start the partition: one record before the next offset the ledger stores,
  // when it has consumed any, so that the topic's copy of the last entry can be checked
  // (Recheck). Sets failure_ if the ledger cannot say.
  std::optional<int64_t> SeekOffset(int32_t partition);
  // The first record delivered for a partition sought one back must be the ledger's last
  // entry of it again: the same offset, key, timestamp and value. Otherwise this is not
  // the topic the ledger was built from (deleted and created again, say, with as many
  // records), and consuming on would silently skip the new topic's first records.
  Status Recheck(int32_t partition, int64_t expected_offset, const RdKafka::Message& msg);
  // The record to recheck was deleted by retention while the next one was kept: start at
  // the next one without the check (said in the log). False if that is not the case.
  bool SkipRecheck(int32_t partition);
  // When nothing arrives and librdkafka reports connection failures, says so every 10 s:
  // librdkafka retries for ever, and an operator should not see silence.
  void WarnIfUnreachable();
  // The offset to resume the partition at; sets failure_ if the ledger cannot say.
  std::optional<int64_t> ResumeOffset(int32_t partition);

  Ledger& ledger_;
  const IngestOptions& options_;
  ClientErrors errors_;  // credentials refused, TLS failed: stop at once
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<RdKafka::Topic> topic_;  // for metadata requests
  std::set<int32_t> assigned_;
  std::set<int32_t> at_end_;            // partitions whose end was reached with nothing newer
  std::map<int32_t, int64_t> recheck_;  // partition -> offset of its last entry, to check
  Clock::time_point last_warned_ = Clock::now();
  uint64_t warned_errors_ = 0;  // connection failures counted at the last warning
  std::optional<Error> failure_;
  Clock::time_point last_count_check_ = Clock::now();
};

Result<std::unique_ptr<KafkaSource>> KafkaSource::Open(Ledger& ledger, const IngestOptions& options,
                                                       const std::atomic<bool>& stop) {
  std::unique_ptr<KafkaSource> s(new KafkaSource(ledger, options));
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  G60_TRY(Set(*conf, "bootstrap.servers", options.bootstrap));
  G60_TRY(Set(*conf, "group.id", options.group_id));
  G60_TRY(Set(*conf, "client.id", "g60ledger-ingest"));
  G60_TRY(Set(*conf, "enable.auto.commit", "false"));
  G60_TRY(Set(*conf, "enable.auto.offset.store", "false"));
  G60_TRY(Set(*conf, "auto.offset.reset", "error"));
  G60_TRY(Set(*conf, "enable.partition.eof", "true"));
  // Records of an aborted Kafka transaction never become entries; those of a committed
  // one all do (`produce --transactional-id`).
  G60_TRY(Set(*conf, "isolation.level", "read_committed"));
  G60_TRY(Set(*conf, "partition.assignment.strategy", "cooperative-sticky"));
  // Every record received must fit in an entry (ledger/entry.h, kRecordMaxBytes).
  G60_TRY(Set(*conf, "receive.message.max.bytes", std::to_string(kRecordMaxBytes)));
  for (const auto& [k, v] : options.kafka) {
    if (k == "receive.message.max.bytes" || k == "fetch.max.bytes") {
      auto n = std::strtoull(v.c_str(), nullptr, 10);
      if (n > kRecordMaxBytes) {
        return Fail(Error::InvalidArgument(fmt::format(
            "[kafka.consumer] {} = {} is above the largest record the ledger keeps whole "
            "({} bytes); leave it at most that",
            k, v, kRecordMaxBytes)));
      }
    }
    G60_TRY(Set(*conf, k, v));
  }
  std::string err;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(s.get()), err) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", static_cast<RdKafka::EventCb*>(&s->errors_), err) !=
          RdKafka::Conf::CONF_OK) {
    return Fail(Error::Internal("setting the consumer's callbacks: " + err));
  }
  s->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!s->consumer_) return Fail(Error::InvalidArgument("creating the Kafka consumer: " + err));
  // No topic configuration of its own: a topic handle created with one replaces the
  // defaults set above for that topic, auto.offset.reset=error among them, and librdkafka
  // would then reset a missing offset to the end without a word.
  s->topic_.reset(RdKafka::Topic::create(s->consumer_.get(), options.topic, nullptr, err));
  if (!s->topic_) return Fail(Error::InvalidArgument("topic " + options.topic + ": " + err));

  // The ledger's offsets are one topic's, and its partition count decides which partition
  // holds each applicant: record both in a new ledger, refuse another topic or count.
  auto count = s->TopicPartitionCount(150, /*before_assignment=*/true, &stop);
  if (!count) return Fail(count.error());
  if (*count == 0) return std::unique_ptr<KafkaSource>();  // stopped while waiting
  G60_TRY(ledger.BindTopic(options.topic, static_cast<uint32_t>(*count)));

  if (options.assign_all) {
    G60_TRY(s->AssignAll());
  } else if (auto rc = s->consumer_->subscribe({options.topic}); rc != RdKafka::ERR_NO_ERROR) {
    return Fail(Error::InvalidArgument(
        fmt::format("subscribing to {}: {}", options.topic, RdKafka::err2str(rc))));
  }
  spdlog::info("ingest: consuming {} ({} partitions) from {} as group {}", options.topic, *count,
               options.bootstrap, options.group_id);
  return s;
}

Result<int32_t> KafkaSource::TopicPartitionCount(int attempts, bool before_assignment,
                                                 const std::atomic<bool>* stop) {
  RdKafka::ErrorCode last = RdKafka::ERR_NO_ERROR;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (stop && stop->load()) return 0;  // SIGTERM while the cluster does not answer
    RdKafka::Metadata* raw = nullptr;
    auto rc = consumer_->metadata(false, topic_.get(), &raw, 1000);
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (rc == RdKafka::ERR_NO_ERROR && md->topics()->size() == 1) {
      const auto* t = (*md->topics())[0];
      rc = t->err();
      if (rc == RdKafka::ERR_NO_ERROR && !t->partitions()->empty()) {
        errors_.Connected();
        return static_cast<int32_t>(t->partitions()->size());
      }
      if (rc == RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED) {
        return Fail(Error::PermissionDenied(
            fmt::format("the Kafka cluster refuses this client access to topic {} "
                        "(TOPIC_AUTHORIZATION_FAILED): "
                        "grant the ingest principal Read and Describe on it",
                        options_.topic)));
      }
    }
    last = rc;
    if (!before_assignment) break;
    std::unique_ptr<RdKafka::Message> served(consumer_->consume(200));
    G60_ASSERT(served->err() != RdKafka::ERR_NO_ERROR);  // nothing is assigned yet
    if (auto refused = errors_.Refused()) return Fail(*refused);
  }
  std::string transport = errors_.LastTransportError();
  return Fail(Error::Unavailable(
      fmt::format("no metadata for topic {} from {}: {}{}", options_.topic, options_.bootstrap,
                  RdKafka::err2str(last), transport.empty() ? "" : " (last: " + transport + ")")));
}

std::optional<int64_t> KafkaSource::ResumeOffset(int32_t partition) {
  if (static_cast<uint32_t>(partition) >= ledger_.partition_count()) {
    failure_ = Error::FailedPrecondition(fmt::format(
        "partition {} of {} was assigned, but ledger {} was created for a topic of {} partitions: "
        "partitions were added to the topic. A ledger's topic keeps its partition count for "
        "life (docs/design.md, \"The partition count is fixed\")",
        partition, options_.topic, ledger_.dir(), ledger_.partition_count()));
    return std::nullopt;
  }
  auto head = ledger_.Head(static_cast<uint32_t>(partition));
  if (!head) {
    failure_ = head.error();
    return std::nullopt;
  }
  // A fresh partition starts at offset 0 exactly, not "beginning": if the broker no
  // longer has offset 0 we must hear about it.
  return *head ? (*head)->next_offset : 0;
}

std::optional<int64_t> KafkaSource::SeekOffset(int32_t partition) {
  auto next = ResumeOffset(partition);
  if (!next) return std::nullopt;
  if (*next == 0) {
    recheck_.erase(partition);
    return 0;
  }
  recheck_[partition] = *next - 1;
  return *next - 1;
}

Status KafkaSource::Recheck(int32_t partition, int64_t expected_offset,
                            const RdKafka::Message& msg) {
  auto not_the_topic = [&](const std::string& what) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "ledger {} has consumed {} partition {} up to offset {}, but {}: this is not the topic "
        "the ledger was built from (it was deleted and created again, or the configuration "
        "names another cluster). Nothing is lost from the ledger. Point ingest at the "
        "original topic, or start a new ledger directory for this one",
        ledger_.dir(), options_.topic, partition, expected_offset, what)));
  };
  if (msg.offset() != expected_offset) {
    return not_the_topic(
        fmt::format("the topic's first record from there is at offset {}", msg.offset()));
  }
  auto head = ledger_.Head(static_cast<uint32_t>(partition));
  if (!head) return Fail(head.error());
  G60_ASSERT(*head && (*head)->size > 0);
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  auto bytes = txn->Get(ledger_.tables().entries,
                        EntryKey(static_cast<uint32_t>(partition), (*head)->size - 1));
  if (!bytes) return Fail(bytes.error());
  if (!*bytes) return Fail(Error::DataLoss("the last entry of a partition is missing"));
  auto entry = DecodeEntry(**bytes);
  if (!entry) return Fail(entry.error());
  const auto& src = entry->body.source();
  const std::string key = msg.key() ? *msg.key() : std::string();
  const std::string_view value(static_cast<const char*>(msg.payload()),
                               msg.payload() ? msg.len() : 0);
  if (src.offset() != msg.offset() || src.key() != key ||
      src.timestamp_ms() != msg.timestamp().timestamp || entry->body.value() != value) {
    return not_the_topic(fmt::format(
        "the topic's record at offset {} is not the one its entry {} holds (key \"{}\" vs "
        "\"{}\", timestamp {} vs {}, {} vs {} value bytes)",
        msg.offset(), (*head)->size - 1, PrintableBytes(key), PrintableBytes(src.key()),
        msg.timestamp().timestamp, src.timestamp_ms(), value.size(), entry->body.value().size()));
  }
  return {};
}

bool KafkaSource::SkipRecheck(int32_t partition) {
  auto it = recheck_.find(partition);
  if (it == recheck_.end()) return false;
  int64_t low = -1, high = -1;
  if (consumer_->query_watermark_offsets(options_.topic, partition, &low, &high, 5000) !=
          RdKafka::ERR_NO_ERROR ||
      low != it->second + 1) {
    return false;
  }
  spdlog::warn(
      "{} partition {}: the ledger's last record (offset {}) was deleted by retention; "
      "continuing at offset {} without re-reading it",
      options_.topic, partition, it->second, low);
  std::unique_ptr<RdKafka::TopicPartition> tp(
      RdKafka::TopicPartition::create(options_.topic, partition, low));
  recheck_.erase(it);
  if (auto rc = consumer_->seek(*tp, 5000); rc != RdKafka::ERR_NO_ERROR) {
    failure_ =
        Error::Unavailable(fmt::format("seeking {} partition {} to offset {}: {}", options_.topic,
                                       partition, low, RdKafka::err2str(rc)));
  }
  return true;
}

void KafkaSource::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                               std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    for (auto* tp : partitions) {
      auto offset = SeekOffset(tp->partition());
      tp->set_offset(offset ? *offset : RdKafka::Topic::OFFSET_INVALID);
      if (!offset) continue;
      assigned_.insert(tp->partition());
      at_end_.erase(tp->partition());
    }
    if (cooperative) {
      if (RdKafka::Error* e = consumer->incremental_assign(partitions)) {
        failure_ = Error::Unavailable("assigning partitions: " + e->str());
        delete e;
      }
    } else if (auto rc = consumer->assign(partitions); rc != RdKafka::ERR_NO_ERROR) {
      failure_ = Error::Unavailable(std::string("assigning partitions: ") + RdKafka::err2str(rc));
    }
    spdlog::info("assigned {} partition(s) of {}", partitions.size(), options_.topic);
  } else if (err == RdKafka::ERR__REVOKE_PARTITIONS) {
    for (auto* tp : partitions) {
      assigned_.erase(tp->partition());
      at_end_.erase(tp->partition());
      recheck_.erase(tp->partition());
    }
    if (cooperative) {
      if (RdKafka::Error* e = consumer->incremental_unassign(partitions)) delete e;
    } else {
      consumer->unassign();
    }
    spdlog::info("revoked {} partition(s) of {}", partitions.size(), options_.topic);
  } else {
    failure_ = Error::Unavailable(std::string("rebalance failed: ") + RdKafka::err2str(err));
  }
}

Status KafkaSource::AssignAll() {
  std::vector<RdKafka::TopicPartition*> parts;
  for (uint32_t p = 0; p < ledger_.partition_count(); ++p) {
    auto offset = SeekOffset(static_cast<int32_t>(p));
    if (!offset) {
      RdKafka::TopicPartition::destroy(parts);
      return Fail(*failure_);
    }
    parts.push_back(
        RdKafka::TopicPartition::create(options_.topic, static_cast<int32_t>(p), *offset));
    assigned_.insert(static_cast<int32_t>(p));
  }
  auto rc = consumer_->assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  if (rc != RdKafka::ERR_NO_ERROR) {
    return Fail(Error::Unavailable(std::string("assigning partitions: ") + RdKafka::err2str(rc)));
  }
  spdlog::info("assigned all {} partition(s) of {} (no consumer group)", assigned_.size(),
               options_.topic);
  return {};
}

// Partitions added while ingest runs would move applicants to other partitions: stop
// before anything is decided under the new count (the group's rebalance also catches
// it, through ResumeOffset; with assign_all only this check does).
Status KafkaSource::CheckPartitionCountUnchanged() {
  if (Clock::now() - last_count_check_ < std::chrono::seconds(10)) return {};
  last_count_check_ = Clock::now();
  auto count = TopicPartitionCount(1, /*before_assignment=*/false);
  if (!count) {  // unavailable for now: said, and asked again at the next check
    spdlog::warn("ingest: could not check the partition count of {}: {}", options_.topic,
                 count.error().message());
    return {};
  }
  if (static_cast<uint32_t>(*count) == ledger_.partition_count()) return {};
  return Fail(Error::FailedPrecondition(fmt::format(
      "topic {} now has {} partitions; ledger {} was created for {}. Ingest stops before "
      "deciding anything under the new count, which would split applicants' histories over "
      "two chains (docs/design.md, \"The partition count is fixed\")",
      options_.topic, *count, ledger_.dir(), ledger_.partition_count())));
}

// The broker answered OFFSET_OUT_OF_RANGE for the offset the ledger needs: either the
// records were deleted before they were ingested (data loss), or the topic is not the
// one the ledger consumed (the ledger is ahead of it). The remedies differ.
Error KafkaSource::OffsetOutOfRange(int32_t partition, const std::string& detail) {
  auto next = ResumeOffset(partition);
  int64_t low = -1, high = -1;
  auto rc = consumer_->query_watermark_offsets(options_.topic, partition, &low, &high, 5000);
  if (next && rc == RdKafka::ERR_NO_ERROR && *next > high) {
    return Error::FailedPrecondition(fmt::format(
        "ledger {} has consumed {} partition {} up to offset {}, but the topic now ends at "
        "offset {}: this is not the topic the ledger was built from (it was deleted and "
        "created again, or it lived on a development broker, which keeps nothing when it "
        "stops). Nothing is lost from the ledger. Point ingest at the original topic, or "
        "start a new ledger directory for the new topic",
        ledger_.dir(), options_.topic, partition, *next - 1, high));
  }
  if (next && rc == RdKafka::ERR_NO_ERROR) {
    return Error::DataLoss(fmt::format(
        "Kafka no longer has offsets {}..{} of {} partition {}, which the ledger still needs "
        "(it has consumed up to offset {}; the topic now starts at offset {}): the records "
        "were deleted by retention (or by the development broker's size limit) before they "
        "were ingested. Ingest stops rather than skip them; replay the missing events from "
        "their source into a new topic",
        *next, low - 1, options_.topic, partition, *next - 1, low));
  }
  return Error::DataLoss(fmt::format(
      "Kafka no longer has the offset the ledger needs for {} partition {} ({}): the records "
      "were deleted (retention, or the development broker's per-partition size limit) before "
      "they were ingested. Ingest stops rather than skip them; replay the missing events from "
      "their source into a new topic",
      options_.topic, partition, detail));
}

KafkaSource::Polled KafkaSource::Poll(int wait_ms, Record& out) {
  if (failure_) return Polled::kFailed;
  if (auto s = CheckPartitionCountUnchanged(); !s) {
    failure_ = s.error();
    return Polled::kFailed;
  }
  std::unique_ptr<RdKafka::Message> msg(consumer_->consume(wait_ms));
  if (!failure_) failure_ = errors_.Refused();
  if (failure_) return Polled::kFailed;  // set by a callback inside consume()
  switch (msg->err()) {
    case RdKafka::ERR_NO_ERROR:
      if (auto it = recheck_.find(msg->partition()); it != recheck_.end()) {
        // Delivered on as a redelivery: the writer skips it, being below the stored offset.
        Status same = Recheck(msg->partition(), it->second, *msg);
        recheck_.erase(it);
        if (!same) {
          failure_ = same.error();
          return Polled::kFailed;
        }
      }
      out.topic = msg->topic_name();
      out.partition = static_cast<uint32_t>(msg->partition());
      out.offset = msg->offset();
      out.timestamp_ms = msg->timestamp().timestamp;
      out.key = msg->key() ? *msg->key() : std::string();
      if (msg->payload()) {
        out.value.assign(static_cast<const char*>(msg->payload()), msg->len());
      } else {
        out.value.clear();
      }
      at_end_.erase(msg->partition());
      return Polled::kRecord;
    case RdKafka::ERR__TIMED_OUT:
      WarnIfUnreachable();
      return Polled::kTimedOut;
    case RdKafka::ERR__PARTITION_EOF:
      if (auto it = recheck_.find(msg->partition());
          it != recheck_.end() && msg->offset() <= it->second) {
        // The topic ends where the ledger's last record should be.
        failure_ = OffsetOutOfRange(msg->partition(), "the topic ends before it");
        return Polled::kFailed;
      }
      at_end_.insert(msg->partition());
      return Polled::kPartitionAtEnd;
    case RdKafka::ERR__AUTO_OFFSET_RESET:
    case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
      if (SkipRecheck(msg->partition())) return failure_ ? Polled::kFailed : Polled::kTimedOut;
      failure_ = OffsetOutOfRange(msg->partition(), msg->errstr());
      return Polled::kFailed;
    case RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED:
    case RdKafka::ERR_GROUP_AUTHORIZATION_FAILED:
    case RdKafka::ERR_CLUSTER_AUTHORIZATION_FAILED:
      failure_ = Error::PermissionDenied(fmt::format(
          "the Kafka cluster refused ingest: {} (the ingest principal needs Read and Describe "
          "on topic {} and Read on group {}; docs/kafka.md lists the ACLs)",
          msg->errstr(), options_.topic, options_.group_id));
      return Polled::kFailed;
    case RdKafka::ERR__FATAL:
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
      failure_ = Error::Unavailable(fmt::format("Kafka: {}", msg->errstr()));
      return Polled::kFailed;
    default:
      // Ordinary errors are informational: librdkafka recovers by itself.
      spdlog::warn("kafka: {}", msg->errstr());
      return Polled::kTimedOut;
  }
}

void KafkaSource::WarnIfUnreachable() {
  if (Clock::now() - last_warned_ < std::chrono::seconds(10)) return;
  uint64_t errors = errors_.TransportErrors();
  if (errors == warned_errors_) return;  // none since the last look: quiet, or recovered
  last_warned_ = Clock::now();
  warned_errors_ = errors;
  spdlog::warn("ingest: no records for now; the Kafka client's last connection error: {}",
               errors_.LastTransportError());
}

void KafkaSource::CommitMonitoring(const std::map<int32_t, int64_t>& next_offsets) {
  std::vector<RdKafka::TopicPartition*> offsets;
  for (auto [p, o] : next_offsets)
    offsets.push_back(RdKafka::TopicPartition::create(options_.topic, p, o));
  if (!offsets.empty()) consumer_->commitAsync(offsets);
  RdKafka::TopicPartition::destroy(offsets);
}

std::optional<int64_t> KafkaSource::Lag(int32_t partition, int64_t next) {
  int64_t low = 0, high = 0;
  if (consumer_->get_watermark_offsets(options_.topic, partition, &low, &high) !=
      RdKafka::ERR_NO_ERROR) {
    return std::nullopt;
  }
  return std::max<int64_t>(0, high - next);
}

// ---- Stage 2: the verifier pool.
//
// Decodes each chunk and checks its signatures on `threads` workers as soon as it is
// cut, and hands chunks back in the order they were submitted. Keys granted in a chunk
// are learnt (SeenKeys) so that the events they sign verify before the grant commits;
// whether such a key may sign is still the rules' decision. At most `max_in_flight`
// chunks are held: Submit waits, which holds the consumer back when the writer falls
// behind.
class VerifierPool {
 public:
  VerifierPool(Ledger& ledger, unsigned threads, size_t max_in_flight)
      : lookup_([this, &ledger](std::string_view key_id) {
          std::string k = ledger.PublicKeyOf(key_id);
          return k.empty() ? seen_keys_.Find(key_id) : k;
        }),
        workers_(threads, max_in_flight, [this](Chunk& c) {
          PrecheckAll(c.records, c.prechecked, lookup_, 1);
          for (const auto& p : c.prechecked)
            seen_keys_.Learn(p.decoded);
        }) {}

  bool Submit(Chunk chunk, const std::function<bool()>& give_up) {
    return workers_.Submit(std::move(chunk), give_up);
  }
  std::optional<Chunk> Next(std::chrono::milliseconds wait) { return workers_.Next(wait); }
  size_t in_flight() const { return workers_.in_flight(); }
  double cpu_seconds() const { return workers_.cpu_seconds(); }

 private:
  SeenKeys seen_keys_;
  PublicKeyLookup lookup_;
  OrderedWorkers<Chunk> workers_;  // last: its threads use the members above
};

// ---- Stage 4 (used by the writer): the checkpoint publisher.
//
// Signs checkpoints through the Checkpointer (when configured) and produces each one to
// the checkpoint topic after the transaction that stored it commits (key: the note's
// origin). At start it produces each partition's latest checkpoint again, for auditors
// who missed it. A checkpoint that cannot be delivered stays in the ledger and is
// produced again at the next start.
class CheckpointPublisher {
 public:
  static Result<std::unique_ptr<CheckpointPublisher>> Create(Ledger& ledger,
                                                             const IngestOptions& options);
  bool signs() const { return options_.checkpointer != nullptr; }
  // Signs what `batch` makes due (before its commit); Publish() them after the commit.
  Result<std::vector<StoredCheckpoint>> IssueDue(Batch& batch) {
    if (!signs()) return std::vector<StoredCheckpoint>{};
    return options_.checkpointer->IssueDue(batch, false);
  }
  Status Publish(const std::vector<StoredCheckpoint>& issued);
  // Signs what is due (all that is uncovered when `force`) in a transaction of its own.
  Status IssueNow(bool force);
  // Waits for the checkpoint topic's acknowledgements; logs what failed.
  void Flush();
  uint64_t issued() const { return issued_; }
  uint64_t delivered() const { return delivered_; }

 private:
  CheckpointPublisher(Ledger& ledger, const IngestOptions& options)
      : ledger_(ledger), options_(options) {}
  Status RepublishLatest();

  Ledger& ledger_;
  const IngestOptions& options_;
  std::unique_ptr<Producer> producer_;
  uint64_t issued_ = 0;
  uint64_t delivered_ = 0;
};

Result<std::unique_ptr<CheckpointPublisher>> CheckpointPublisher::Create(
    Ledger& ledger, const IngestOptions& options) {
  std::unique_ptr<CheckpointPublisher> c(new CheckpointPublisher(ledger, options));
  if (!options.checkpointer || options.checkpoint_topic.empty()) return c;
  ProducerOptions po;
  po.bootstrap = options.bootstrap;
  po.topic = options.checkpoint_topic;
  po.delivery_timeout_ms = 15000;
  po.flush_timeout_ms = 20000;
  po.kafka = options.producer_kafka;
  auto p = Producer::Create(po);
  if (!p) return Fail(p.error().Context("creating the checkpoint producer"));
  c->producer_ = std::move(*p);
  G60_TRY(c->RepublishLatest());
  return c;
}

Status CheckpointPublisher::RepublishLatest() {
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  auto heads = ReadHeads(*txn, ledger_.tables());
  if (!heads) return Fail(heads.error());
  for (const auto& h : *heads) {
    auto latest = LatestCheckpoint(*txn, ledger_.tables(), h.partition);
    if (!latest) return Fail(latest.error());
    if (!*latest) continue;
    std::string origin = (*latest)->note.substr(0, (*latest)->note.find('\n'));
    G60_TRY(producer_->Send(origin, (*latest)->note, origin));
  }
  return {};
}

Status CheckpointPublisher::Publish(const std::vector<StoredCheckpoint>& issued) {
  for (const auto& c : issued) {
    spdlog::info("checkpoint: partition {} size {}", c.partition, c.size);
    if (!producer_) continue;
    std::string origin = c.note.substr(0, c.note.find('\n'));
    G60_TRY(producer_->Send(origin, c.note, fmt::format("{} {}", origin, c.size)));
  }
  issued_ += issued.size();
  return {};
}

Status CheckpointPublisher::IssueNow(bool force) {
  if (!signs()) return {};
  auto batch = ledger_.BeginBatch();
  if (!batch) return Fail(batch.error());
  auto issued = options_.checkpointer->IssueDue(*batch, force);
  if (!issued) return Fail(issued.error());
  if (issued->empty()) return {};
  G60_TRY(batch->Commit());
  return Publish(*issued);
}

void CheckpointPublisher::Flush() {
  if (!producer_) return;
  auto delivered = producer_->Flush();
  if (!delivered) {
    spdlog::error("checkpoint topic: {}", delivered.error().ToString());
    return;
  }
  delivered_ = delivered->delivered;
  for (const auto& f : delivered->failures) {
    spdlog::error(
        "checkpoint {} was not delivered to {}: {} (it is stored in the ledger and is "
        "produced again at the next start)",
        f.label, options_.checkpoint_topic, f.error);
  }
}

// ---- Stage 3: the single writer.
//
// Takes the verified chunks back in consumption order, decides and appends each record
// (Batch::Append: rules, entry, hash chain, Merkle log, state, indexes), and commits a
// batch (entries, state and offsets in one durable LMDB transaction) when it holds
// batch_max_messages records, when it has been open batch_max_ms since its first
// record, or when the consumer has nothing more for now and no chunk is on its way.
// After each commit it publishes the checkpoints the batch made due, reports the
// chunk outcomes (on_commit) and the monitoring offsets. Idle, it signs what the
// checkpoint interval makes due. Returns when the consumer is done and every chunk is
// committed, or with the first error (nothing of the open batch is then committed).
class Writer {
 public:
  Writer(Ledger& ledger, const IngestOptions& options, KafkaSource& source, VerifierPool& verifiers,
         CheckpointPublisher& checkpoints, PipelineState& shared, IngestStats& stats)
      : ledger_(ledger),
        options_(options),
        source_(source),
        verifiers_(verifiers),
        checkpoints_(checkpoints),
        shared_(shared),
        stats_(stats) {}

  Status Run();

 private:
  std::chrono::milliseconds Wait() const;
  Status Apply(Chunk& chunk);
  Status Commit();
  void ReportCommitted(Clock::time_point committed);
  void LogProgress();

  Ledger& ledger_;
  const IngestOptions& options_;
  KafkaSource& source_;
  VerifierPool& verifiers_;
  CheckpointPublisher& checkpoints_;
  PipelineState& shared_;
  IngestStats& stats_;

  std::optional<Batch> batch_;
  std::vector<Chunk> chunks_;  // the open batch's chunks, for on_commit
  std::vector<AppendOutcome> outcomes_;
  std::map<int32_t, int64_t> next_offsets_;
  size_t in_batch_ = 0;
  Clock::time_point opened_;
  Clock::time_point last_progress_ = Clock::now();
};

std::chrono::milliseconds Writer::Wait() const {
  auto wait = std::chrono::milliseconds(50);
  if (!batch_) return wait;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      opened_ + std::chrono::milliseconds(options_.batch_max_ms) - Clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), wait);
}

Status Writer::Run() {
  auto last_checkpoint_poll = Clock::now();
  while (true) {
    std::optional<Chunk> chunk = verifiers_.Next(Wait());
    if (chunk) G60_TRY(Apply(*chunk));
    bool drained = shared_.consumer_done && verifiers_.in_flight() == 0;
    if (batch_ &&
        (drained || Clock::now() - opened_ >= std::chrono::milliseconds(options_.batch_max_ms))) {
      G60_TRY(Commit());
    }
    if (batch_) continue;
    if (drained) return {};
    if (!chunk && Clock::now() - last_checkpoint_poll >= std::chrono::seconds(1)) {
      last_checkpoint_poll = Clock::now();
      G60_TRY(checkpoints_.IssueNow(false));  // idle: sign what the interval makes due
    }
    LogProgress();
  }
}

Status Writer::Apply(Chunk& chunk) {
  shared_.queued_records -= static_cast<int64_t>(chunk.records.size());
  if (options_.metrics) options_.metrics->VerifyQueueDepth(shared_.queued_records.load());
  if (!chunk.records.empty() && !batch_) {
    auto b = ledger_.BeginBatch();
    if (!b) return Fail(b.error());
    batch_.emplace(std::move(*b));
    opened_ = Clock::now();
  }
  for (size_t i = 0; i < chunk.records.size(); ++i) {
    const Record& r = chunk.records[i];
    auto outcome = batch_->Append(r, chunk.prechecked[i]);
    if (!outcome) {
      return Fail(outcome.error().Context(
          fmt::format("appending the record at {}/{}", r.partition, r.offset)));
    }
    outcomes_.push_back(*outcome);
    if (!outcome->appended) {
      ++stats_.skipped;
      continue;
    }
    ++stats_.appended;
    bool accepted = outcome->verdict == ledger::v1::VERDICT_ACCEPTED;
    if (accepted) {
      ++stats_.accepted;
    } else {
      ++stats_.rejected;
      ++stats_.rejected_by_reason[ReasonName(outcome->reason)];
    }
    if (options_.metrics) options_.metrics->Appended(accepted, ReasonName(outcome->reason));
    next_offsets_[static_cast<int32_t>(r.partition)] = r.offset + 1;
  }
  in_batch_ += chunk.records.size();
  const bool flush = chunk.flush;
  if (chunk.records.empty()) {
    --shared_.unsettled;  // a flush marker: nothing of its own to commit
  } else {
    chunks_.push_back(std::move(chunk));
  }
  // A flush commits now unless more records are already on their way (then the batch
  // fills, or its age commits it): one commit per burst, not per chunk.
  if (batch_ &&
      ((flush && verifiers_.in_flight() == 0) || in_batch_ >= options_.batch_max_messages)) {
    G60_TRY(Commit());
  }
  return {};
}

Status Writer::Commit() {
  auto issued = checkpoints_.IssueDue(*batch_);
  if (!issued) return Fail(issued.error());
  auto commit_started = Clock::now();
  G60_TRY(batch_->Commit());
  stats_.commit_seconds += std::chrono::duration<double>(Clock::now() - commit_started).count();
  batch_.reset();
  ++stats_.batches;
  G60_TRY(checkpoints_.Publish(*issued));
  ReportCommitted(Clock::now());
  return {};
}

void Writer::ReportCommitted(Clock::time_point committed) {
  stats_.busy_seconds = std::chrono::duration<double>(committed.time_since_epoch()).count() -
                        static_cast<double>(shared_.first_record_ns.load()) / 1e9;
  size_t at = 0;
  for (const auto& c : chunks_) {
    if (options_.on_commit) {
      std::vector<AppendOutcome> part(outcomes_.begin() + static_cast<long>(at),
                                      outcomes_.begin() + static_cast<long>(at + c.records.size()));
      options_.on_commit(c.records, part);
    }
    at += c.records.size();
  }
  shared_.unsettled -= static_cast<int64_t>(chunks_.size());
  chunks_.clear();
  outcomes_.clear();
  if (options_.metrics) {
    options_.metrics->BatchCommitted(std::chrono::duration<double>(committed - opened_).count());
    for (auto [p, next] : next_offsets_) {
      if (auto lag = source_.Lag(p, next)) options_.metrics->Lag(p, *lag);
    }
  }
  source_.CommitMonitoring(next_offsets_);
  next_offsets_.clear();
  in_batch_ = 0;
}

void Writer::LogProgress() {
  if (Clock::now() - last_progress_ < std::chrono::seconds(10) || stats_.appended == 0) return;
  last_progress_ = Clock::now();
  spdlog::info(
      "ingest progress consumed={} appended={} accepted={} rejected={} skipped={} batches={} "
      "rate={:.0f}/s",
      shared_.consumed.load(), stats_.appended, stats_.accepted, stats_.rejected, stats_.skipped,
      stats_.batches, static_cast<double>(stats_.appended) / std::max(stats_.busy_seconds, 1e-9));
}

// ---- The consumer loop (stage 1 driving stage 2), on the calling thread.
//
// Cuts the records into chunks of `chunk_records`, or fewer when a chunk has waited
// `chunk_max_wait`, and hands each to the verifiers; when the consumer has nothing
// more for now it marks the chunk `flush` so the writer commits rather than wait.
// Returns the reason it stopped, if it was a failure.
class ChunkCutter {
 public:
  ChunkCutter(const IngestOptions& options, KafkaSource& source, VerifierPool& verifiers,
              PipelineState& shared)
      : options_(options),
        source_(source),
        verifiers_(verifiers),
        shared_(shared),
        chunk_records_(std::clamp<size_t>(options.batch_max_messages / 8, 1, 256)),
        chunk_max_wait_(std::min<uint32_t>(std::max(options.batch_max_ms, 1u), 10)) {
    collecting_.records.reserve(chunk_records_);
  }

  std::optional<Error> Run(const std::atomic<bool>& stop);
  // Hands over what is collected (a flush marker at least); false if the writer failed.
  bool Submit(bool flush);

 private:
  int WaitMs() const;

  const IngestOptions& options_;
  KafkaSource& source_;
  VerifierPool& verifiers_;
  PipelineState& shared_;
  const size_t chunk_records_;
  const std::chrono::milliseconds chunk_max_wait_;
  Chunk collecting_;
  Clock::time_point chunk_started_ = Clock::now();
  bool submitted_since_flush_ = false;
};

bool ChunkCutter::Submit(bool flush) {
  if (collecting_.records.empty() && !(flush && submitted_since_flush_)) return true;
  collecting_.flush = flush;
  auto n = static_cast<int64_t>(collecting_.records.size());
  shared_.queued_records += n;
  ++shared_.unsettled;
  if (!verifiers_.Submit(std::move(collecting_), [this] { return shared_.write_failed.load(); })) {
    return false;
  }
  if (options_.metrics) options_.metrics->VerifyQueueDepth(shared_.queued_records.load());
  collecting_ = Chunk{};
  collecting_.records.reserve(chunk_records_);
  submitted_since_flush_ = !flush;
  return true;
}

int ChunkCutter::WaitMs() const {
  if (collecting_.records.empty()) return 100;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(chunk_started_ +
                                                                    chunk_max_wait_ - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::optional<Error> ChunkCutter::Run(const std::atomic<bool>& stop) {
  Record r;
  while (!shared_.write_failed && !stop.load()) {
    bool idle = false;
    switch (source_.Poll(WaitMs(), r)) {
      case KafkaSource::Polled::kRecord:
        if (collecting_.records.empty()) chunk_started_ = Clock::now();
        if (shared_.first_record_ns.load() == 0) {
          shared_.first_record_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        chunk_started_.time_since_epoch())
                                        .count();
        }
        if (options_.metrics) options_.metrics->Consumed(1);
        collecting_.records.push_back(std::move(r));
        r = Record{};
        ++shared_.consumed;
        break;
      case KafkaSource::Polled::kTimedOut:
        idle = true;
        break;
      case KafkaSource::Polled::kPartitionAtEnd:
        // One partition at its end says nothing while others still deliver.
        idle = source_.CaughtUp();
        break;
      case KafkaSource::Polled::kFailed:
        return source_.failure();
    }
    bool full = collecting_.records.size() >= chunk_records_;
    bool late = !collecting_.records.empty() && Clock::now() - chunk_started_ >= chunk_max_wait_;
    // Nothing new coming in: the writer commits what it has rather than wait for more.
    if ((full || late || idle) && !Submit(idle)) return std::nullopt;
    if (options_.until_caught_up && collecting_.records.empty() && shared_.unsettled.load() == 0 &&
        source_.CaughtUp()) {
      spdlog::info("ingest: caught up on {} partition(s)", source_.assigned());
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<IngestStats> RunIngest(Ledger& ledger, const IngestOptions& options,
                              const std::atomic<bool>& stop) {
  if (options.bootstrap.empty()) {
    return Fail(
        Error::InvalidArgument("no Kafka bootstrap servers (--bootstrap or [kafka] bootstrap)"));
  }
  const unsigned threads = options.verify_threads
                               ? options.verify_threads
                               : std::max(1u, std::thread::hardware_concurrency());
  auto source = KafkaSource::Open(ledger, options, stop);
  if (!source) return Fail(source.error());
  if (!*source) {
    spdlog::info("ingest: stopped before the Kafka cluster answered; nothing was consumed");
    return IngestStats{};
  }
  auto checkpoints = CheckpointPublisher::Create(ledger, options);
  if (!checkpoints) return Fail(checkpoints.error());

  IngestStats stats;
  PipelineState shared;
  const size_t chunk_records = std::clamp<size_t>(options.batch_max_messages / 8, 1, 256);
  VerifierPool verifiers(
      ledger, threads,
      2 * (options.batch_max_messages + chunk_records - 1) / chunk_records + threads);
  Writer writer(ledger, options, **source, verifiers, **checkpoints, shared, stats);
  std::thread writer_thread([&] {
    double cpu = ThreadCpuSeconds();
    if (auto s = writer.Run(); !s) {
      shared.write_failure = s.error();
      shared.write_failed = true;
    }
    stats.write_cpu_seconds = ThreadCpuSeconds() - cpu;
  });

  const double consume_cpu = ThreadCpuSeconds();
  ChunkCutter cutter(options, **source, verifiers, shared);
  std::optional<Error> failure = cutter.Run(stop);
  // Records already consumed are good whatever stopped us: the writer commits them,
  // unless writing is what failed.
  cutter.Submit(true);
  shared.consumer_done = true;
  stats.consume_cpu_seconds = ThreadCpuSeconds() - consume_cpu;
  writer_thread.join();
  stats.consumed = shared.consumed.load();
  stats.verify_cpu_seconds = verifiers.cpu_seconds();
  if (shared.write_failed) {
    if (failure) spdlog::error("{}", failure->ToString());
    failure = shared.write_failure;
  }
  // Everything committed gets a checkpoint before ingest stops, whatever stopped it,
  // unless writing is what failed.
  if (!shared.write_failed) {
    if (auto s = (*checkpoints)->IssueNow(true); !s) {
      if (!failure) {
        failure = s.error();
      } else {
        spdlog::error("signing the last checkpoints: {}", s.error().ToString());
      }
    }
  }
  (*checkpoints)->Flush();
  stats.checkpoints = (*checkpoints)->issued();
  stats.checkpoints_published = (*checkpoints)->delivered();
  if (failure) return Fail(*failure);
  return stats;
}

}  // namespace g60
