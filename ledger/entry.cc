#include "ledger/entry.h"

#include <fmt/format.h>

#include "ledger/bytes.h"

namespace g60 {

std::string EncodeEntry(uint32_t partition, uint64_t sequence, const Hash& prev_hash,
                        std::string_view body_bytes) {
  G60_ASSERT(body_bytes.size() <= kEntryBodyMaxBytes);
  std::string out;
  out.reserve(kEntryHeaderSize + body_bytes.size());
  out.append(kEntryMagic);
  out.push_back(static_cast<char>(kEntryVersion));
  out.append(3, '\0');
  PutU32BE(out, partition);
  PutU64BE(out, sequence);
  out.append(AsBytes(prev_hash));
  PutU32BE(out, static_cast<uint32_t>(body_bytes.size()));
  G60_ASSERT(out.size() == kEntryHeaderSize);
  out.append(body_bytes);
  return out;
}

Result<EntryHeader> DecodeEntryHeader(std::string_view bytes) {
  if (bytes.size() < kEntryHeaderSize) {
    return Fail(Error::DataLoss(fmt::format("entry is {} bytes, shorter than its {}-byte header",
                                            bytes.size(), kEntryHeaderSize)));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.substr(0, 4) != kEntryMagic) return Fail(Error::DataLoss("entry magic is not G60E"));
  if (p[4] != kEntryVersion) {
    return Fail(
        Error::DataLoss(fmt::format("entry format version {} is not {}", p[4], kEntryVersion)));
  }
  if (p[5] != 0 || p[6] != 0 || p[7] != 0) {
    return Fail(Error::DataLoss("entry reserved bytes are not zero"));
  }
  EntryHeader h;
  h.partition = GetU32BE(p + 8);
  h.sequence = GetU64BE(p + 12);
  std::copy(p + 20, p + 52, h.prev_hash.begin());
  h.body_size = GetU32BE(p + 52);
  if (bytes.size() - kEntryHeaderSize != h.body_size) {
    return Fail(Error::DataLoss(fmt::format("entry body length field says {} bytes, {} follow",
                                            h.body_size, bytes.size() - kEntryHeaderSize)));
  }
  return h;
}

Result<DecodedEntry> DecodeEntry(std::string_view bytes) {
  auto header = DecodeEntryHeader(bytes);
  if (!header) return Fail(header.error());
  DecodedEntry out{*header, {}};
  std::string_view body = bytes.substr(kEntryHeaderSize);
  if (!out.body.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Fail(Error::DataLoss("entry body is not a valid EntryBody message"));
  }
  return out;
}

Hash EntryHash(std::string_view entry_bytes) {
  static constexpr char kLeafPrefix = '\0';
  return Sha256(std::string_view(&kLeafPrefix, 1), entry_bytes);
}

std::string EntryKey(uint32_t partition, uint64_t sequence) {
  std::string k;
  k.reserve(12);
  PutU32BE(k, partition);
  PutU64BE(k, sequence);
  return k;
}

}  // namespace g60
