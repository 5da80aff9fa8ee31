#include "consumers/metrics.h"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace g60 {

Result<std::unique_ptr<IngestMetrics>> IngestMetrics::Create(const std::string& listen) {
  std::unique_ptr<IngestMetrics> m(new IngestMetrics());
  m->registry_ = std::make_shared<prometheus::Registry>();
  auto& r = *m->registry_;
  m->consumed_ = &prometheus::BuildCounter()
                      .Name("g60_messages_consumed_total")
                      .Help("Kafka records received from g60.events")
                      .Register(r)
                      .Add({});
  auto& appended = prometheus::BuildCounter()
                       .Name("g60_entries_accepted_total")
                       .Help("Ledger entries appended with verdict ACCEPTED")
                       .Register(r);
  m->accepted_ = &appended.Add({});
  m->rejected_ = &prometheus::BuildCounter()
                      .Name("g60_entries_rejected_total")
                      .Help("Ledger entries appended with verdict REJECTED, by reason")
                      .Register(r);
  m->commit_seconds_ =
      &prometheus::BuildHistogram()
           .Name("g60_batch_commit_seconds")
           .Help("Time to apply and durably commit one batch")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5});
  m->queue_depth_ = &prometheus::BuildGauge()
                         .Name("g60_verify_queue_depth")
                         .Help("Records consumed and waiting for signature verification")
                         .Register(r)
                         .Add({});
  m->lag_ =
      &prometheus::BuildGauge()
           .Name("g60_partition_lag")
           .Help("Records of the partition not yet in the ledger (high watermark - next offset)")
           .Register(r);
  if (!listen.empty()) {
    try {
      m->exposer_ = std::make_unique<prometheus::Exposer>(listen);
    } catch (const std::exception& e) {
      return Fail(Error::FailedPrecondition(
          fmt::format("cannot serve metrics on {}: {}", listen, e.what())));
    }
    m->exposer_->RegisterCollectable(m->registry_);
  }
  return m;
}

IngestMetrics::~IngestMetrics() = default;

void IngestMetrics::Consumed(uint64_t n) {
  consumed_->Increment(static_cast<double>(n));
}

void IngestMetrics::Appended(bool accepted, const std::string& reason) {
  if (accepted) {
    accepted_->Increment();
    return;
  }
  auto it = rejected_by_reason_.find(reason);
  if (it == rejected_by_reason_.end()) {
    it = rejected_by_reason_.emplace(reason, &rejected_->Add({{"reason", reason}})).first;
  }
  it->second->Increment();
}

void IngestMetrics::BatchCommitted(double seconds) {
  commit_seconds_->Observe(seconds);
}

void IngestMetrics::VerifyQueueDepth(int64_t depth) {
  queue_depth_->Set(static_cast<double>(depth));
}

void IngestMetrics::Lag(int32_t partition, int64_t lag) {
  auto it = lag_by_partition_.find(partition);
  if (it == lag_by_partition_.end()) {
    it =
        lag_by_partition_.emplace(partition, &lag_->Add({{"partition", std::to_string(partition)}}))
            .first;
  }
  it->second->Set(static_cast<double>(lag));
}

std::string IngestMetrics::Text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace g60
