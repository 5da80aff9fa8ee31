#include "ledger/index.h"

#include "ledger/bytes.h"
#include "ledger/event_view.h"

namespace g60 {

namespace {
constexpr size_t kPositionSize = 4 + 8;

IndexPosition PositionOf(std::string_view key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.data() + key.size() - kPositionSize);
  return IndexPosition{GetU32BE(p), GetU64BE(p + 4)};
}
}  // namespace

IndexPosition IndexKeyPosition(std::string_view key) {
  G60_ASSERT(key.size() >= kPositionSize);
  return PositionOf(key);
}

std::string IndexTerm(std::string_view s) {
  std::string t(s);
  t.push_back('\0');
  return t;
}

std::string TimeTerm(int64_t ms) {
  std::string t;
  PutU64BE(t, static_cast<uint64_t>(ms) ^ (uint64_t{1} << 63));
  return t;
}

std::string IndexKey(IndexKind kind, std::string_view term, uint32_t partition, uint64_t sequence) {
  std::string k;
  k.reserve(1 + term.size() + kPositionSize);
  k.push_back(static_cast<char>(kind));
  k.append(term);
  PutU32BE(k, partition);
  PutU64BE(k, sequence);
  return k;
}

std::vector<std::string> IndexKeys(const IndexInput& in, uint32_t partition, uint64_t sequence) {
  const ledger::v1::EntryBody& b = *in.body;
  std::vector<std::string> keys;
  auto add = [&](IndexKind kind, std::string_view term) {
    keys.push_back(IndexKey(kind, term, partition, sequence));
  };
  if (!b.applicant_id().empty()) add(IndexKind::kApplicant, IndexTerm(b.applicant_id()));
  if (!b.applicant_id().empty() && !in.project_id.empty()) {
    add(IndexKind::kProject, IndexTerm(b.applicant_id() + std::string(1, '\0') + in.project_id));
  }
  if (!b.programme().empty()) add(IndexKind::kProgramme, IndexTerm(b.programme()));
  add(IndexKind::kType, std::string(1, static_cast<char>(b.event_type())));
  add(IndexKind::kTime,
      TimeTerm(in.occurred_at_ms > 0 ? in.occurred_at_ms : b.source().timestamp_ms()));
  if (!in.approval_id.empty()) {
    add(IndexKind::kApproval, IndexTerm(EventKey(in.approval_id, b.applicant_id())));
  }
  if (b.verdict() == ledger::v1::VERDICT_REJECTED) {
    std::string r;
    r.push_back(static_cast<char>((b.reason() >> 8) & 0xff));
    r.push_back(static_cast<char>(b.reason() & 0xff));
    add(IndexKind::kReason, r);
  }
  return keys;
}

Status ScanIndex(const lmdb::Txn& txn, MDB_dbi index, IndexKind kind, std::string_view term,
                 IndexPosition from, const std::function<bool(IndexPosition)>& fn) {
  std::string prefix(1, static_cast<char>(kind));
  prefix.append(term);
  auto cur = lmdb::Cursor::Open(txn, index);
  if (!cur) return Fail(cur.error());
  for (auto ok = cur->Seek(IndexKey(kind, term, from.partition, from.sequence));;
       ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    std::string_view k = cur->key();
    if (k.size() != prefix.size() + kPositionSize || k.substr(0, prefix.size()) != prefix) break;
    if (!fn(PositionOf(k))) break;
  }
  return {};
}

Status ScanIndexRange(const lmdb::Txn& txn, MDB_dbi index, IndexKind kind, std::string_view low,
                      std::string_view high,
                      const std::function<bool(std::string_view, IndexPosition)>& fn) {
  auto cur = lmdb::Cursor::Open(txn, index);
  if (!cur) return Fail(cur.error());
  std::string start(1, static_cast<char>(kind));
  start.append(low);
  for (auto ok = cur->Seek(start);; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    std::string_view k = cur->key();
    if (k.empty() || static_cast<uint8_t>(k[0]) != static_cast<uint8_t>(kind) ||
        k.size() < 1 + kPositionSize) {
      break;
    }
    std::string_view term = k.substr(1, k.size() - 1 - kPositionSize);
    if (term >= high) break;
    if (!fn(term, PositionOf(k))) break;
  }
  return {};
}

}  // namespace g60
