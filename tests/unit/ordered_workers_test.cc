#include "ledger/ordered_workers.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace {

using g60::OrderedWorkers;
using namespace std::chrono_literals;

struct Item {
  int id = 0;
  int sleep_us = 0;
  int result = -1;
  std::thread::id worker;
};

}  // namespace

TEST_CASE("ordered workers return items in submission order, however long each takes",
          "[pipeline]") {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> us(0, 400);
  OrderedWorkers<Item> workers(3, 8, [](Item& i) {
    std::this_thread::sleep_for(std::chrono::microseconds(i.sleep_us));
    i.result = i.id * 2;
    i.worker = std::this_thread::get_id();
  });
  constexpr int kItems = 500;
  int next_expected = 0;
  std::set<std::thread::id> used;
  auto take_ready = [&](std::chrono::milliseconds wait) {
    while (auto item = workers.Next(wait)) {
      REQUIRE(item->id == next_expected);
      REQUIRE(item->result == item->id * 2);
      used.insert(item->worker);
      ++next_expected;
      wait = 0ms;
    }
  };
  for (int i = 0; i < kItems; ++i) {
    while (workers.in_flight() >= 8)
      take_ready(50ms);
    REQUIRE(workers.Submit(Item{i, us(rng), -1, {}}));
    take_ready(0ms);
  }
  while (workers.in_flight() > 0)
    take_ready(50ms);
  CHECK(next_expected == kItems);
  CHECK(used.size() > 1);  // the work was spread over the pool
}

TEST_CASE("a full pool holds the submitter back until an item is taken, or it gives up",
          "[pipeline]") {
  std::atomic<bool> release{false};
  OrderedWorkers<Item> workers(1, 2, [&](Item& i) {
    while (!release.load())
      std::this_thread::sleep_for(1ms);
    i.result = i.id;
  });
  REQUIRE(workers.Submit(Item{0, 0, -1, {}}));
  REQUIRE(workers.Submit(Item{1, 0, -1, {}}));
  CHECK(workers.in_flight() == 2);
  // Full: a submitter that gives up returns false and queues nothing.
  int asked = 0;
  CHECK_FALSE(workers.Submit(Item{2, 0, -1, {}}, [&] { return ++asked >= 3; }));
  CHECK(asked == 3);
  CHECK(workers.in_flight() == 2);
  // Nothing is done yet: Next waits, then says so.
  CHECK_FALSE(workers.Next(20ms).has_value());
  // Another thread takes the first item once done; the blocked Submit then goes through.
  std::thread taker([&] {
    release = true;
    auto first = workers.Next(5000ms);
    REQUIRE(first.has_value());
    CHECK(first->id == 0);
  });
  REQUIRE(workers.Submit(Item{2, 0, -1, {}}));
  taker.join();
  for (int id : {1, 2}) {
    auto item = workers.Next(5000ms);
    REQUIRE(item.has_value());
    CHECK(item->id == id);
    CHECK(item->result == id);
  }
  CHECK(workers.in_flight() == 0);
}

TEST_CASE("destroying a pool abandons queued items and waits for running ones", "[pipeline]") {
  std::atomic<int> ran{0};
  {
    OrderedWorkers<Item> workers(1, 16, [&](Item&) {
      std::this_thread::sleep_for(20ms);
      ++ran;
    });
    for (int i = 0; i < 10; ++i)
      REQUIRE(workers.Submit(Item{i, 0, -1, {}}));
    std::this_thread::sleep_for(5ms);
  }
  CHECK(ran.load() >= 1);
  CHECK(ran.load() < 10);
}
