// Kafka's default partitioner for keyed records, as the Java client computes it, so that
// producers in every language and the ledger agree on which partition, and so which
// chain, holds an applicant (DESIGN.md, "One applicant, one chain").
//
// Source: Apache Kafka's Java client, org.apache.kafka.common.utils.Utils.murmur2 and
// toPositive, used by BuiltInPartitioner.partitionForKey (KIP-794 kept it for keyed
// records); kafka-python's kafka.partitioner.default and librdkafka's "murmur2" and
// "murmur2_random" partitioners compute the same. tests/vectors/kafka-murmur2-partitions.json
// holds the cases every implementation of ours is tested against.
#pragma once

#include <cstdint>
#include <string_view>

namespace g60 {

// MurmurHash2 (32-bit, seed 0x9747b28c) of the key's bytes, as the Java client's signed int.
int32_t KafkaMurmur2(std::string_view key);

// The partition Kafka's Java client gives a record with this (non-null) key on a topic of
// `partition_count` partitions: (murmur2(key) & 0x7fffffff) mod partition_count.
// Requires partition_count > 0.
uint32_t KafkaPartitionForKey(std::string_view key, uint32_t partition_count);

}  // namespace g60
