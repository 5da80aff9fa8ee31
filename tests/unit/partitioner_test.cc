// Kafka's default partitioner for keyed records: ours (ledger/partitioner.h) and
// librdkafka's murmur2 partitioner against tests/vectors/kafka-murmur2-partitions.json,
// whose partitions are the Java client's (its own murmur2 test values among them).
#include <librdkafka/rdkafka.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ledger/bytes.h"
#include "ledger/partitioner.h"

using namespace g60;

namespace {

struct Case {
  int id;
  std::string key;
  int32_t murmur2;
  std::map<uint32_t, uint32_t> partitions;  // partition count -> partition
};

std::vector<Case> Vectors() {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/vectors/kafka-murmur2-partitions.json");
  REQUIRE(in.good());
  auto j = nlohmann::json::parse(in);
  std::vector<Case> out;
  for (const auto& c : j.at("cases")) {
    auto key = HexDecode(c.at("key_hex").get<std::string>());
    REQUIRE(key.has_value());
    Case k{c.at("tcId").get<int>(), *key, c.at("murmur2").get<int32_t>(), {}};
    for (const auto& [count, p] : c.at("partitions").items())
      k.partitions[static_cast<uint32_t>(std::stoul(count))] = p.get<uint32_t>();
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace

TEST_CASE("murmur2 and the partition of every key are the Java client's", "[partitioner]") {
  auto cases = Vectors();
  REQUIRE(cases.size() == 70);
  for (const auto& c : cases) {
    INFO("tcId " << c.id);
    CHECK(KafkaMurmur2(c.key) == c.murmur2);
    REQUIRE(c.partitions.size() == 6);
    for (auto [count, partition] : c.partitions)
      CHECK(KafkaPartitionForKey(c.key, count) == partition);
  }
}

TEST_CASE("librdkafka's murmur2 partitioner agrees with the vectors", "[partitioner]") {
  for (const auto& c : Vectors()) {
    INFO("tcId " << c.id);
    for (auto [count, partition] : c.partitions) {
      // librdkafka ignores the topic handle and opaques in this function.
      int32_t p = rd_kafka_msg_partitioner_murmur2(nullptr, c.key.data(), c.key.size(),
                                                   static_cast<int32_t>(count), nullptr, nullptr);
      CHECK(p == static_cast<int32_t>(partition));
    }
  }
}

TEST_CASE("the issue's example applicant goes to partition 0 of 8, not 5", "[partitioner]") {
  CHECK(KafkaPartitionForKey("91310117026AC2FW7P", 8) == 0);
}
