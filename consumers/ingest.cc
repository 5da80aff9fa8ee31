#include "consumers/ingest.h"

#include <fmt/format.h>
#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "ledger/cpu_clock.h"
#include "ledger/ordered_workers.h"
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

// Assigns every partition of the topic at the offsets the ledger stores.
Status AssignAll(RdKafka::KafkaConsumer& consumer, Ledger& ledger, const std::string& topic,
                 Rebalancer& rebalancer) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> tconf(RdKafka::Conf::create(RdKafka::Conf::CONF_TOPIC));
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(&consumer, topic, tconf.get(), err));
  if (!t) return Fail(Error::InvalidArgument("topic " + topic + ": " + err));
  int32_t count = 0;
  for (int attempt = 0; attempt < 150 && count == 0; ++attempt) {
    RdKafka::Metadata* raw = nullptr;
    auto rc = consumer.metadata(false, t.get(), &raw, 2000);
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (rc == RdKafka::ERR_NO_ERROR && md->topics()->size() == 1 &&
        (*md->topics())[0]->err() == RdKafka::ERR_NO_ERROR) {
      count = static_cast<int32_t>((*md->topics())[0]->partitions()->size());
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (count == 0) return Fail(Error::Unavailable("no metadata for topic " + topic));
  std::vector<RdKafka::TopicPartition*> parts;
  for (int32_t p = 0; p < count; ++p) {
    auto head = ledger.Head(static_cast<uint32_t>(p));
    if (!head) {
      RdKafka::TopicPartition::destroy(parts);
      return Fail(head.error());
    }
    parts.push_back(RdKafka::TopicPartition::create(topic, p, *head ? (*head)->next_offset : 0));
    rebalancer.assigned.insert(p);
  }
  auto rc = consumer.assign(parts);
  RdKafka::TopicPartition::destroy(parts);
  if (rc != RdKafka::ERR_NO_ERROR) {
    return Fail(Error::Unavailable(std::string("assigning partitions: ") + RdKafka::err2str(rc)));
  }
  spdlog::info("assigned all {} partition(s) of {} (no consumer group)", count, topic);
  return {};
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
  if (options.assign_all) {
    G60_TRY(AssignAll(*consumer, ledger, options.topic, rebalancer));
  } else if (auto rc = consumer->subscribe({options.topic}); rc != RdKafka::ERR_NO_ERROR) {
    return Fail(Error::InvalidArgument(
        fmt::format("subscribing to {}: {}", options.topic, RdKafka::err2str(rc))));
  }
  spdlog::info("ingest: consuming {} from {} as group {}", options.topic, options.bootstrap,
               options.group_id);

  IngestStats stats;
  // Checkpoints: produced to their topic after the transaction that stored them commits.
  std::unique_ptr<Producer> checkpoint_producer;
  if (options.checkpointer && !options.checkpoint_topic.empty()) {
    ProducerOptions po;
    po.bootstrap = options.bootstrap;
    po.topic = options.checkpoint_topic;
    po.delivery_timeout_ms = 15000;
    po.flush_timeout_ms = 20000;
    po.kafka = options.producer_kafka;
    auto p = Producer::Create(po);
    if (!p) return Fail(p.error().Context("creating the checkpoint producer"));
    checkpoint_producer = std::move(*p);
  }
  auto publish = [&](const std::vector<StoredCheckpoint>& issued) -> Status {
    for (const auto& c : issued) {
      spdlog::info("checkpoint: partition {} size {}", c.partition, c.size);
      if (!checkpoint_producer) continue;
      std::string origin = c.note.substr(0, c.note.find('\n'));
      G60_TRY(checkpoint_producer->Send(origin, c.note, fmt::format("{} {}", origin, c.size)));
    }
    stats.checkpoints += issued.size();
    return {};
  };
  // Signs what is due (all that is uncovered when `force`) in a transaction of its own.
  auto checkpoint_now = [&](bool force) -> Status {
    auto batch = ledger.BeginBatch();
    if (!batch) return Fail(batch.error());
    auto issued = options.checkpointer->IssueDue(*batch, force);
    if (!issued) return Fail(issued.error());
    if (issued->empty()) return {};
    G60_TRY(batch->Commit());
    return publish(*issued);
  };
  if (checkpoint_producer) {  // the latest of each partition again, for auditors who missed it
    auto txn = lmdb::Txn::Begin(ledger.env(), true);
    if (!txn) return Fail(txn.error());
    auto heads = ReadHeads(*txn, ledger.tables());
    if (!heads) return Fail(heads.error());
    for (const auto& h : *heads) {
      auto latest = LatestCheckpoint(*txn, ledger.tables(), h.partition);
      if (!latest) return Fail(latest.error());
      if (!*latest) continue;
      std::string origin = (*latest)->note.substr(0, (*latest)->note.find('\n'));
      G60_TRY(checkpoint_producer->Send(origin, (*latest)->note, origin));
    }
  }

  // The pipeline. This thread consumes and cuts the records into chunks; `threads`
  // workers decode each chunk and check its signatures as soon as it is cut; one writer
  // thread takes the chunks back in consumption order, decides and appends each record,
  // and commits a batch (entries, state and offsets in one durable LMDB transaction)
  // when it holds batch_max_messages records, when it has been open batch_max_ms, or
  // when the consumer has nothing more for now. Verification, the real
  // cost, never waits for a batch boundary; the bound on chunks in flight holds the
  // consumer back when the writer falls behind.
  struct Chunk {
    std::vector<Record> records;
    std::vector<Prechecked> prechecked;
    bool flush = false;  // the consumer has nothing more for now: commit after this chunk
  };
  const size_t chunk_records = std::clamp<size_t>(options.batch_max_messages / 8, 1, 256);
  const auto chunk_max_wait =
      std::chrono::milliseconds(std::min<uint32_t>(std::max(options.batch_max_ms, 1u), 10));
  SeenKeys seen_keys;
  PublicKeyLookup lookup = [&](std::string_view key_id) {
    std::string k = ledger.PublicKeyOf(key_id);
    return k.empty() ? seen_keys.Find(key_id) : k;
  };
  OrderedWorkers<Chunk> verifiers(
      threads, 2 * (options.batch_max_messages + chunk_records - 1) / chunk_records + threads,
      [&](Chunk& c) {
        PrecheckAll(c.records, c.prechecked, lookup, 1);
        for (const auto& p : c.prechecked)
          seen_keys.Learn(p.decoded);
      });
  std::atomic<int64_t> queued_records{0};  // cut into chunks, not yet taken by the writer
  std::atomic<int64_t> first_record_ns{0};
  std::atomic<bool> consumer_done{false};
  std::atomic<int64_t> unsettled{0};  // chunks submitted and not yet committed (or empty)
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> write_failed{false};
  std::optional<Error> write_failure;  // set by the writer before write_failed

  // The single writer.
  auto write = [&]() -> Status {
    std::optional<Batch> batch;
    std::vector<Chunk> chunks;  // the open batch's chunks, for on_commit
    std::vector<AppendOutcome> outcomes;
    std::map<int32_t, int64_t> next_offsets;
    size_t in_batch = 0;
    Clock::time_point opened;
    auto last_checkpoint_poll = Clock::now();
    auto commit = [&]() -> Status {
      std::vector<StoredCheckpoint> issued;
      if (options.checkpointer) {
        auto due = options.checkpointer->IssueDue(*batch, false);
        if (!due) return Fail(due.error());
        issued = std::move(*due);
      }
      auto commit_started = Clock::now();
      G60_TRY(batch->Commit());
      stats.commit_seconds += std::chrono::duration<double>(Clock::now() - commit_started).count();
      batch.reset();
      ++stats.batches;
      G60_TRY(publish(issued));
      auto committed = Clock::now();
      stats.busy_seconds = std::chrono::duration<double>(committed.time_since_epoch()).count() -
                           static_cast<double>(first_record_ns.load()) / 1e9;
      size_t at = 0;
      for (const auto& c : chunks) {
        if (options.on_commit) {
          std::vector<AppendOutcome> part(
              outcomes.begin() + static_cast<long>(at),
              outcomes.begin() + static_cast<long>(at + c.records.size()));
          options.on_commit(c.records, part);
        }
        at += c.records.size();
      }
      unsettled -= static_cast<int64_t>(chunks.size());
      chunks.clear();
      outcomes.clear();
      if (options.metrics) {
        options.metrics->BatchCommitted(std::chrono::duration<double>(committed - opened).count());
        for (auto [p, next] : next_offsets) {
          int64_t low = 0, high = 0;
          if (consumer->get_watermark_offsets(options.topic, p, &low, &high) ==
              RdKafka::ERR_NO_ERROR) {
            options.metrics->Lag(p, std::max<int64_t>(0, high - next));
          }
        }
      }
      // Monitoring only: tell Kafka how far we are (the ledger holds the real offsets).
      std::vector<RdKafka::TopicPartition*> offsets;
      for (auto [p, o] : next_offsets)
        offsets.push_back(RdKafka::TopicPartition::create(options.topic, p, o));
      if (!offsets.empty()) consumer->commitAsync(offsets);
      RdKafka::TopicPartition::destroy(offsets);
      next_offsets.clear();
      in_batch = 0;
      return {};
    };
    auto last_progress = Clock::now();
    while (true) {
      auto wait = std::chrono::milliseconds(50);
      if (batch) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            opened + std::chrono::milliseconds(options.batch_max_ms) - Clock::now());
        wait = std::clamp(left, std::chrono::milliseconds(0), wait);
      }
      std::optional<Chunk> chunk = verifiers.Next(wait);
      if (chunk) {
        queued_records -= static_cast<int64_t>(chunk->records.size());
        if (options.metrics) options.metrics->VerifyQueueDepth(queued_records.load());
        if (!chunk->records.empty() && !batch) {
          auto b = ledger.BeginBatch();
          if (!b) return Fail(b.error());
          batch.emplace(std::move(*b));
          opened = Clock::now();
        }
        for (size_t i = 0; i < chunk->records.size(); ++i) {
          const Record& r = chunk->records[i];
          auto outcome = batch->Append(r, chunk->prechecked[i]);
          if (!outcome) {
            return Fail(outcome.error().Context(
                fmt::format("appending the record at {}/{}", r.partition, r.offset)));
          }
          outcomes.push_back(*outcome);
          if (!outcome->appended) {
            ++stats.skipped;
            continue;
          }
          ++stats.appended;
          bool accepted = outcome->verdict == ledger::v1::VERDICT_ACCEPTED;
          if (accepted) {
            ++stats.accepted;
          } else {
            ++stats.rejected;
            ++stats.rejected_by_reason[ReasonName(outcome->reason)];
          }
          if (options.metrics) options.metrics->Appended(accepted, ReasonName(outcome->reason));
          next_offsets[static_cast<int32_t>(r.partition)] = r.offset + 1;
        }
        in_batch += chunk->records.size();
        bool flush = chunk->flush;
        if (chunk->records.empty()) {
          --unsettled;  // a flush marker: nothing of its own to commit
        } else {
          chunks.push_back(std::move(*chunk));
        }
        // A flush commits now unless more records are already on their way (then the
        // batch fills, or its age commits it): one commit per burst, not per chunk.
        if (batch &&
            ((flush && verifiers.in_flight() == 0) || in_batch >= options.batch_max_messages)) {
          G60_TRY(commit());
        }
      }
      bool drained = consumer_done && verifiers.in_flight() == 0;
      if (batch &&
          (drained || Clock::now() - opened >= std::chrono::milliseconds(options.batch_max_ms))) {
        G60_TRY(commit());
      }
      if (batch) continue;
      if (drained) return {};
      // Idle: sign what the interval makes due.
      if (options.checkpointer && !chunk &&
          Clock::now() - last_checkpoint_poll >= std::chrono::seconds(1)) {
        last_checkpoint_poll = Clock::now();
        G60_TRY(checkpoint_now(false));
      }
      if (Clock::now() - last_progress >= std::chrono::seconds(10) && stats.appended > 0) {
        last_progress = Clock::now();
        spdlog::info(
            "ingest progress consumed={} appended={} accepted={} rejected={} skipped={} "
            "batches={} rate={:.0f}/s",
            consumed.load(), stats.appended, stats.accepted, stats.rejected, stats.skipped,
            stats.batches,
            static_cast<double>(stats.appended) / std::max(stats.busy_seconds, 1e-9));
      }
    }
  };
  std::thread writer([&] {
    double cpu = ThreadCpuSeconds();
    if (auto s = write(); !s) {
      write_failure = s.error();
      write_failed = true;
    }
    stats.write_cpu_seconds = ThreadCpuSeconds() - cpu;
  });

  // The consumer (this thread).
  const double consume_cpu = ThreadCpuSeconds();
  std::optional<Error> failure;
  Chunk collecting;
  auto chunk_started = Clock::now();
  bool submitted_since_flush = false;
  auto give_up = [&] { return write_failed.load(); };
  // Hands the chunk being collected to the verifiers; `flush` asks the writer to commit
  // once it has applied it. Returns false if the writer has failed.
  auto submit = [&](bool flush) -> bool {
    if (collecting.records.empty() && !(flush && submitted_since_flush)) return true;
    collecting.flush = flush;
    auto n = static_cast<int64_t>(collecting.records.size());
    queued_records += n;
    ++unsettled;
    if (!verifiers.Submit(std::move(collecting), give_up)) return false;
    if (options.metrics) options.metrics->VerifyQueueDepth(queued_records.load());
    collecting = Chunk{};
    collecting.records.reserve(chunk_records);
    submitted_since_flush = !flush;
    return true;
  };
  collecting.records.reserve(chunk_records);
  while (!write_failed) {
    if (stop.load()) break;
    if (rebalancer.error) {
      failure = *rebalancer.error;
      break;
    }
    int wait_ms = collecting.records.empty()
                      ? 100
                      : static_cast<int>(std::max<int64_t>(
                            0, std::chrono::duration_cast<std::chrono::milliseconds>(
                                   chunk_started + chunk_max_wait - Clock::now())
                                   .count()));
    std::unique_ptr<RdKafka::Message> msg(consumer->consume(wait_ms));
    bool idle = false;
    switch (msg->err()) {
      case RdKafka::ERR_NO_ERROR: {
        if (collecting.records.empty()) chunk_started = Clock::now();
        if (first_record_ns.load() == 0) {
          first_record_ns =
              std::chrono::duration_cast<std::chrono::nanoseconds>(chunk_started.time_since_epoch())
                  .count();
        }
        if (options.metrics) options.metrics->Consumed(1);
        Record r;
        r.topic = msg->topic_name();
        r.partition = static_cast<uint32_t>(msg->partition());
        r.offset = msg->offset();
        r.timestamp_ms = msg->timestamp().timestamp;
        if (msg->key()) r.key = *msg->key();
        if (msg->payload()) r.value.assign(static_cast<const char*>(msg->payload()), msg->len());
        collecting.records.push_back(std::move(r));
        ++consumed;
        rebalancer.at_end.erase(msg->partition());
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
        idle = true;
        break;
      case RdKafka::ERR__PARTITION_EOF:
        // One partition at its end says nothing while others still deliver.
        rebalancer.at_end.insert(msg->partition());
        idle = rebalancer.at_end.size() >= rebalancer.assigned.size();
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
    bool full = collecting.records.size() >= chunk_records;
    bool late = !collecting.records.empty() && Clock::now() - chunk_started >= chunk_max_wait;
    // Nothing new coming in: the writer commits what it has rather than wait for more.
    if ((full || late || idle) && !submit(idle)) break;
    if (options.until_caught_up && collecting.records.empty() && unsettled.load() == 0 &&
        !rebalancer.assigned.empty() && rebalancer.at_end.size() == rebalancer.assigned.size()) {
      spdlog::info("ingest: caught up on {} partition(s)", rebalancer.assigned.size());
      break;
    }
  }
  // Records already consumed are good whatever stopped us: the writer commits them,
  // unless writing is what failed.
  submit(true);
  consumer_done = true;
  stats.consume_cpu_seconds = ThreadCpuSeconds() - consume_cpu;
  writer.join();
  stats.consumed = consumed.load();
  stats.verify_cpu_seconds = verifiers.cpu_seconds();
  if (write_failed) {
    if (failure) spdlog::error("{}", failure->ToString());
    failure = write_failure;
  }
  // Everything committed gets a checkpoint before ingest stops, whatever stopped it,
  // unless writing is what failed.
  if (options.checkpointer && !write_failed) {
    if (auto s = checkpoint_now(true); !s) {
      if (!failure)
        failure = s.error();
      else
        spdlog::error("signing the last checkpoints: {}", s.error().ToString());
    }
  }
  if (checkpoint_producer) {
    auto delivered = checkpoint_producer->Flush();
    if (!delivered) {
      spdlog::error("checkpoint topic: {}", delivered.error().ToString());
    } else {
      stats.checkpoints_published = delivered->delivered;
      for (const auto& f : delivered->failures) {
        spdlog::error(
            "checkpoint {} was not delivered to {}: {} (it is stored in the ledger and is "
            "produced again at the next start)",
            f.label, options.checkpoint_topic, f.error);
      }
    }
  }
  consumer->close();
  if (failure) return Fail(*failure);
  return stats;
}

}  // namespace g60
