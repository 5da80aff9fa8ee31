// Secondary indexes over the entries, written in the same LMDB transaction as the entry
// they point at (table "index"). Every index row is a key with an empty value:
//
//   kind (1 byte) || term || partition (u32 BE) || sequence (u64 BE)
//
// where the term is a string followed by a NUL byte (ids are printable ASCII, so never
// contain one) or a fixed-width big-endian number. Rows of one term sort by partition,
// then chain order, so a term's entries are one contiguous range of the table.
// docs/formats.md lists the kinds; the queries and the payment trace read them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/lmdb.h"
#include "ledger/status.h"
#include "schemas/ledger.pb.h"

namespace g60 {

enum class IndexKind : uint8_t {
  kApplicant = 1,  // term: applicant id
  kProject = 2,    // term: applicant id NUL project id
  kProgramme = 3,  // term: programme id
  kType = 4,       // term: event type (u8)
  kTime = 5,       // term: the event's occurred_at_ms (or the record timestamp), u64 BE of
                   // the value + 2^63
  kApproval = 6,   // term: EventKey(approval event id, applicant id); the approval, its
                   // payments and clawbacks
  kReason = 7,     // term: rejection reason (u16 BE); rejected entries only
};

struct IndexPosition {
  uint32_t partition = 0;
  uint64_t sequence = 0;
};

// The term of a string index, and of a time index.
std::string IndexTerm(std::string_view s);
std::string TimeTerm(int64_t ms);
std::string IndexKey(IndexKind kind, std::string_view term, uint32_t partition, uint64_t sequence);
// The entry an index key points at (its last 12 bytes); the key must come from IndexKey.
IndexPosition IndexKeyPosition(std::string_view key);

// What an entry is indexed under; `approval_id` is the approval it belongs to (its own id
// for an approval, the one paid or clawed back otherwise; empty when none), an approval of
// the entry's applicant.
struct IndexInput {
  const ledger::v1::EntryBody* body = nullptr;
  std::string project_id;
  int64_t occurred_at_ms = 0;
  std::string approval_id;
};
std::vector<std::string> IndexKeys(const IndexInput& in, uint32_t partition, uint64_t sequence);

// Calls `fn` for each entry indexed under (kind, term) in partition and chain order, from
// the first position at or after `from`; stops early when `fn` returns false.
Status ScanIndex(const lmdb::Txn& txn, MDB_dbi index, IndexKind kind, std::string_view term,
                 IndexPosition from, const std::function<bool(IndexPosition)>& fn);

// Calls `fn` for each (term, position) with term in [low, high) (fixed-width terms such as
// time), in key order.
Status ScanIndexRange(const lmdb::Txn& txn, MDB_dbi index, IndexKind kind, std::string_view low,
                      std::string_view high,
                      const std::function<bool(std::string_view term, IndexPosition)>& fn);

}  // namespace g60
