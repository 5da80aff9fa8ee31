// Ordered parallel work with a bound: items (chunks of records) are handed to a fixed
// pool of worker threads as they are submitted, and taken back strictly in submission
// order once their work is done. Submit blocks while `max_in_flight` items are queued,
// being worked on, or done but not yet taken, so a slow consumer of the results holds
// back the producer instead of letting memory grow.
//
// Ingest, verify and audit use it to keep every core verifying signatures while one
// thread reads the log or appends to the ledger.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "ledger/cpu_clock.h"

namespace g60 {

template <typename Item>
class OrderedWorkers {
 public:
  using Work = std::function<void(Item&)>;

  OrderedWorkers(unsigned threads, size_t max_in_flight, Work work)
      : max_in_flight_(max_in_flight < 1 ? 1 : max_in_flight), work_(std::move(work)) {
    for (unsigned t = 0; t < (threads < 1 ? 1 : threads); ++t)
      workers_.emplace_back([this] { Run(); });
  }

  // Abandons the items not yet started; waits for those being worked on.
  ~OrderedWorkers() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      queue_.clear();
    }
    work_cv_.notify_all();
    for (auto& w : workers_)
      w.join();
  }

  OrderedWorkers(const OrderedWorkers&) = delete;
  OrderedWorkers& operator=(const OrderedWorkers&) = delete;

  // Queues an item for the workers. Waits while the pipeline is full; returns false
  // without queueing if `give_up` returns true while waiting.
  bool Submit(Item item, const std::function<bool()>& give_up = {}) {
    std::unique_lock lock(mu_);
    while (slots_.size() >= max_in_flight_) {
      if (give_up && give_up()) return false;
      taken_cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    slots_.push_back(std::make_unique<Slot>(std::move(item)));
    queue_.push_back(slots_.back().get());
    work_cv_.notify_one();
    return true;
  }

  // The oldest item, once its work is done; nothing if there is no item or the oldest
  // is not done within `wait`.
  std::optional<Item> Next(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    if (!done_cv_.wait_for(lock, wait, [&] { return !slots_.empty() && slots_.front()->done; })) {
      return std::nullopt;
    }
    std::optional<Item> out(std::move(slots_.front()->item));
    slots_.pop_front();
    taken_cv_.notify_all();
    return out;
  }

  // Items submitted and not yet taken.
  size_t in_flight() const {
    std::lock_guard lock(mu_);
    return slots_.size();
  }

  // CPU time the workers have spent in the work function, summed over the threads.
  double cpu_seconds() const { return static_cast<double>(cpu_ns_.load()) / 1e9; }

 private:
  struct Slot {
    explicit Slot(Item i) : item(std::move(i)) {}
    Item item;
    bool done = false;
  };

  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      work_cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closed
      Slot* slot = queue_.front();
      queue_.pop_front();
      lock.unlock();
      double cpu = ThreadCpuSeconds();
      work_(slot->item);
      cpu_ns_ += static_cast<int64_t>((ThreadCpuSeconds() - cpu) * 1e9);
      lock.lock();
      slot->done = true;
      done_cv_.notify_all();
    }
  }

  const size_t max_in_flight_;
  const Work work_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;          // an item was queued, or closing
  std::condition_variable done_cv_;          // an item's work is done
  std::condition_variable taken_cv_;         // an item was taken: room to submit
  std::deque<std::unique_ptr<Slot>> slots_;  // every item not yet taken, in submission order
  std::deque<Slot*> queue_;                  // items waiting for a worker
  bool closed_ = false;
  std::atomic<int64_t> cpu_ns_{0};
  std::vector<std::thread> workers_;
};

}  // namespace g60
