// The byte layout of one ledger entry, and the hash that chains entries together.
//
// An entry is stored (LMDB table "entries", key = partition u32 BE || sequence u64 BE)
// as these bytes; all integers big-endian:
//
//   offset  size  field
//        0     4  magic "G60E" (0x47 0x36 0x30 0x45)
//        4     1  format version, 1
//        5     3  reserved, zero
//        8     4  partition (u32)
//       12     8  sequence: index of the entry in its partition's chain, from 0 (u64)
//       20    32  previous entry hash (32 zero bytes for sequence 0)
//       52     4  body length n (u32)
//       56     n  body: a serialised g60.ledger.v1.EntryBody (schemas/ledger.proto)
//
// Nothing follows the body. The entry hash is the RFC 6962 leaf hash of those bytes,
//   entry_hash = SHA-256(0x00 || entry bytes)
// so the hash chain and the partition's Merkle log share one leaf hash, and because
// the previous hash is inside the bytes, each entry hash commits to the whole chain
// before it. Verification hashes the stored bytes; it never re-serialises the body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ledger/crypto.h"
#include "ledger/status.h"
#include "schemas/ledger.pb.h"

namespace g60 {

inline constexpr std::string_view kEntryMagic{"G60E", 4};
inline constexpr uint8_t kEntryVersion = 1;
inline constexpr size_t kEntryHeaderSize = 56;
// The largest Kafka record the ingest receives: it pins librdkafka's
// receive.message.max.bytes to this (its default) and refuses a configuration above it.
inline constexpr uint32_t kRecordMaxBytes = 100'000'000;
// Every record the ingest can receive becomes an entry, whatever it holds (issue 13,
// item 1): its key and value (at most kRecordMaxBytes together) and the body's other
// fields (a detail sentence, ids, effects: a few KiB) fit with room to spare.
inline constexpr uint32_t kEntryBodyMaxBytes = 128u << 20;
static_assert(kEntryBodyMaxBytes > kRecordMaxBytes + (1u << 20));

struct EntryHeader {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  Hash prev_hash{};
  uint32_t body_size = 0;
};

// Builds the stored bytes of an entry.
std::string EncodeEntry(uint32_t partition, uint64_t sequence, const Hash& prev_hash,
                        std::string_view body_bytes);

// Checks the fixed header (magic, version, reserved bytes, length) and returns it;
// the body is the rest of `bytes`. DataLoss names what is wrong.
Result<EntryHeader> DecodeEntryHeader(std::string_view bytes);

// The header and the parsed body of a stored entry.
struct DecodedEntry {
  EntryHeader header;
  ledger::v1::EntryBody body;
};
Result<DecodedEntry> DecodeEntry(std::string_view bytes);

// SHA-256(0x00 || bytes): the entry hash, and the RFC 6962 leaf hash.
Hash EntryHash(std::string_view entry_bytes);

// LMDB key of an entry: partition u32 BE || sequence u64 BE.
std::string EntryKey(uint32_t partition, uint64_t sequence);

}  // namespace g60
