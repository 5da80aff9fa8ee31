// Ingest metrics in the Prometheus text format (prometheus-cpp), served on a configurable
// address at /metrics while the ingest runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "ledger/status.h"

namespace prometheus {
class Counter;
class Exposer;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace g60 {

class IngestMetrics {
 public:
  // Serves /metrics on `listen` ("127.0.0.1:9464"); an empty address only counts.
  static Result<std::unique_ptr<IngestMetrics>> Create(const std::string& listen);
  ~IngestMetrics();

  void Consumed(uint64_t n);
  void Appended(bool accepted, const std::string& reason);
  void BatchCommitted(double seconds);
  void VerifyQueueDepth(int64_t depth);
  void Lag(int32_t partition, int64_t lag);
  // The text exposition, as /metrics serves it (for tests and logs).
  std::string Text() const;

 private:
  IngestMetrics() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Counter* consumed_ = nullptr;
  prometheus::Counter* accepted_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
  prometheus::Histogram* commit_seconds_ = nullptr;
  prometheus::Gauge* queue_depth_ = nullptr;
  prometheus::Family<prometheus::Gauge>* lag_ = nullptr;
  std::map<std::string, prometheus::Counter*> rejected_by_reason_;
  std::map<int32_t, prometheus::Gauge*> lag_by_partition_;
};

}  // namespace g60
