// The policy catalogue in memory: parsed, checked, indexed, and named by the SHA-256 of
// its serialised bytes (schemas/catalog.proto). Catalogues are immutable; the ledger
// caches them by hash.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"
#include "schemas/catalog.pb.h"

namespace g60 {

struct CatalogIndex {
  v1::Catalog catalog;
  std::string bytes;           // exactly as published
  Hash hash{};                 // SHA-256(bytes)
  int64_t valid_from_ms = 0;   // inclusive
  int64_t valid_until_ms = 0;  // exclusive
  std::map<std::string, const v1::Programme*, std::less<>> programmes;
  std::map<std::string, const v1::OverlapGroup*, std::less<>> group_of;  // programme -> group

  const v1::Programme* Find(std::string_view id) const;
  const v1::OverlapGroup* GroupOf(std::string_view programme) const;
};

// Every problem of a catalogue, one sentence each (empty when it is valid).
std::vector<std::string> CheckCatalog(const v1::Catalog& catalog);

// Parses serialised bytes, checks them and builds the index.
Result<std::shared_ptr<const CatalogIndex>> IndexCatalog(std::string bytes);

// Reads a catalogue in protobuf text format (schemas/catalog.txtpb).
Result<v1::Catalog> LoadCatalogText(const std::string& path);
// Parses catalogue text; errors start with `origin` (a file name) and the line:column.
Result<v1::Catalog> ParseCatalogText(std::string_view text, std::string_view origin);
// Serialises deterministically (the bytes that get signed and hashed).
std::string SerializeCatalog(const v1::Catalog& catalog);

// Dates of the policy are calendar dates in China Standard Time (UTC+8).
// "2026-01-01" -> the epoch milliseconds of its midnight in CST.
Result<int64_t> CstDateToMs(std::string_view date);
// The latest time an event may name: 9999-12-31 23:59:59.999 CST, the end of the last year
// a four-digit CST date can write (ms since the Unix epoch). Times are formatted and
// assigned to years within [kTimeMinMs, kTimeMaxMs] only; outside it they are clamped.
inline constexpr int64_t kTimeMaxMs = 253402271999999;
inline constexpr int64_t kTimeMinMs = -62135625600000;  // 0001-01-01 00:00:00 CST
// The CST calendar year of an instant.
int CstYear(int64_t ms);
// "2026-01-01 08:00:00 CST": a time in ms since the Unix epoch, for people, in China
// Standard Time (UTC+8, no daylight saving).
std::string FormatCstTime(int64_t ms);

// floor(base_fen * ratio_bp / 10000), or nullopt if it does not fit int64.
std::optional<int64_t> ApplyRatio(int64_t base_fen, uint32_t ratio_bp);

// Catalogues by hash, shared by every reader of a ledger. Thread-safe.
class CatalogCache {
 public:
  // The indexed catalogue for `hash`, parsing `bytes` the first time.
  Result<std::shared_ptr<const CatalogIndex>> Get(const Hash& hash, std::string_view bytes);

 private:
  std::mutex mu_;
  std::map<Hash, std::shared_ptr<const CatalogIndex>> by_hash_;
};

}  // namespace g60
