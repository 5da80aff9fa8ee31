#include "ledger/partitioner.h"

#include "ledger/status.h"

namespace g60 {

int32_t KafkaMurmur2(std::string_view key) {
  // Unsigned arithmetic gives Java's wrapping int multiplication without undefined
  // behaviour; `>>` on uint32_t is Java's `>>>`.
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const auto length = static_cast<uint32_t>(key.size());
  uint32_t h = kSeed ^ length;
  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    const unsigned char* b = data + 4 * i;
    uint32_t k =
        uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const unsigned char* tail = data + 4 * blocks;
  switch (length % 4) {
    case 3:
      h ^= uint32_t{tail[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint32_t{tail[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint32_t{tail[0]};
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

uint32_t KafkaPartitionForKey(std::string_view key, uint32_t partition_count) {
  G60_ASSERT(partition_count > 0);
  uint32_t positive = static_cast<uint32_t>(KafkaMurmur2(key)) & 0x7fffffffu;  // toPositive
  return positive % partition_count;
}

}  // namespace g60
