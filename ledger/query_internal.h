// Helpers the compliance queries share (ledger/query.cc, ledger/compliance_query.cc):
// reading entries and state through one read transaction, walking tables and index
// ranges, paging, filters, and the snapshot every answer starts from. Internal to the
// queries; nothing outside ledger/ includes it.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ledger/index.h"
#include "ledger/query.h"

namespace g60::query_internal {

using nlohmann::json;

inline std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

inline std::string SourceName(v1::FundingSource s) {
  const std::string& n = v1::FundingSource_Name(s);
  return n.rfind("FUNDING_SOURCE_", 0) == 0 ? n.substr(15) : n;
}

inline std::string LevelName(v1::Level l) {
  const std::string& n = v1::Level_Name(l);
  return n.rfind("LEVEL_", 0) == 0 ? n.substr(6) : n;
}

struct Read {
  DecodedEntry entry;
  DecodedMessage msg;
};

// The time an entry is filed under in the time index (ledger/index.cc): the event's
// occurred_at_ms, or the record's Kafka timestamp when the event could not be read, so
// that a period filter keeps undecodable rejections as the index does.
inline int64_t IndexedTime(const Read& r) {
  int64_t t = r.msg.event.occurred_at_ms();
  return t > 0 ? t : r.entry.body.source().timestamp_ms();
}

inline Result<Read> ReadAt(const lmdb::Txn& txn, const Tables& t, IndexPosition at) {
  auto v = txn.Get(t.entries, EntryKey(at.partition, at.sequence));
  if (!v) return Fail(v.error());
  if (!*v) {
    return Fail(Error::DataLoss(
        fmt::format("an index names entry {}/{}, which is not stored", at.partition, at.sequence)));
  }
  auto e = DecodeEntry(**v);
  if (!e) return Fail(e.error());
  Read r{std::move(*e), {}};
  r.msg = DecodeMessage(r.entry.body.value());
  return r;
}

using Versions = std::map<std::string, std::string>;  // catalogue hash -> version

// An entry as a row; `catalog` is the version of the catalogue it was decided under.
inline json EntryRow(const Read& r, const Versions& versions) {
  json row = EntryBodyFields(r.entry.body);
  row["partition"] = r.entry.header.partition;
  row["sequence"] = r.entry.header.sequence;
  row["occurred_at"] = FormatCst(r.msg.event.occurred_at_ms());
  auto v = versions.find(r.entry.body.catalog_hash());
  row["catalog"] = v == versions.end() ? "" : v->second;
  return row;
}

inline const std::vector<std::string> kEntryColumns = {
    "partition", "sequence", "occurred_at", "type",       "event_id", "applicant_id",
    "programme", "verdict",  "reason",      "amount_fen", "detail",   "catalog"};

// The amount an event names: requested, approved, paid or clawed back (0 for others).
inline int64_t EventAmount(const v1::Event& e) {
  if (e.has_application()) return e.application().requested_fen();
  if (e.has_approval()) return e.approval().approved_fen();
  if (e.has_stage_payment()) return e.stage_payment().amount_fen();
  if (e.has_clawback()) return e.clawback().amount_fen();
  return 0;
}

// Walks every key of `dbi` in [begin, end) (end empty: to the table's end), so that a
// summary covers the whole range; `visit` gets each key and its value, and adds a row
// through a Pager when the key lies after the page token.
inline Status Walk(const lmdb::Txn& txn, MDB_dbi dbi, std::string_view begin, std::string_view end,
                   const std::function<Result<bool>(std::string_view, std::string_view)>& visit) {
  auto cur = lmdb::Cursor::Open(txn, dbi);
  if (!cur) return Fail(cur.error());
  for (auto ok = begin.empty() ? cur->First() : cur->Seek(begin);; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    std::string_view k = cur->key();
    if (!end.empty() && k >= end) break;
    auto go = visit(k, cur->value());
    if (!go) return Fail(go.error());
  }
  return {};
}

inline Result<std::string> DecodeToken(std::string_view token) {
  if (token.empty()) return std::string();
  auto raw = HexDecode(token);
  if (!raw || raw->empty()) {
    return Fail(Error::InvalidArgument("the page token is not one this query gave"));
  }
  return *raw;
}

// The rows of one page: those after the token, up to the limit; `next` is set when a
// row was refused for lack of room.
struct Pager {
  size_t limit;
  std::string after;  // decoded token: rows come from keys after it
  QueryResult& out;
  std::string last_key;
  bool more = false;
  // Offers the row of `key`: added when it lies after the token and the page has room.
  bool Offer(std::string_view key, json row) {
    if (!after.empty() && key <= after) return false;
    if (out.rows.size() >= limit) {
      more = true;
      return false;
    }
    out.rows.push_back(std::move(row));
    last_key = std::string(key);
    return true;
  }
  void Finish() {
    if (more) out.next = HexEncode(last_key);
  }
};

inline Status CheckPage(const Page& page) {
  if (page.limit < 1 || page.limit > 10000) {
    return Fail(Error::InvalidArgument("limit must be from 1 to 10000"));
  }
  return {};
}

inline std::string IndexBegin(IndexKind kind, std::string_view term) {
  std::string k(1, static_cast<char>(kind));
  k.append(term);
  return k;
}

// The end of the key range of keys starting with `prefix`.
inline std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    unsigned char c = static_cast<unsigned char>(prefix.back());
    if (c != 0xff) {
      prefix.back() = static_cast<char>(c + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

inline IndexPosition PositionOfIndexKey(std::string_view key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.data() + key.size() - 12);
  return IndexPosition{GetU32BE(p), GetU64BE(p + 4)};
}

// Walks an index range, reading the entry each key points at.
inline Status WalkEntries(const lmdb::Txn& txn, const Tables& t, std::string_view begin,
                          std::string_view end,
                          const std::function<Result<bool>(std::string_view, const Read&)>& visit) {
  return Walk(txn, t.index, begin, end, [&](std::string_view k, std::string_view) -> Result<bool> {
    auto r = ReadAt(txn, t, PositionOfIndexKey(k));
    if (!r) return Fail(r.error());
    return visit(k, *r);
  });
}

// The catalogue in force in the lowest partition that has one.
inline Result<std::shared_ptr<const CatalogIndex>> CurrentCatalog(const Ledger& ledger,
                                                                  const lmdb::Txn& txn) {
  const Tables& t = ledger.tables();
  auto cur = lmdb::Cursor::Open(txn, t.catalogs);
  if (!cur) return Fail(cur.error());
  auto ok = cur->First();
  if (!ok) return Fail(ok.error());
  if (!*ok || cur->value().size() != 32) return std::shared_ptr<const CatalogIndex>();
  Hash h;
  std::copy(cur->value().begin(), cur->value().end(), h.begin());
  auto blob = txn.Get(t.catalog_blobs, cur->value());
  if (!blob) return Fail(blob.error());
  if (!*blob) return Fail(Error::DataLoss("the catalogue in force is not stored"));
  return ledger.catalogs().Get(h, **blob);
}

// The key range of the time index over a period.
inline std::pair<std::string, std::string> TimeRange(const Period& p) {
  return {IndexBegin(IndexKind::kTime, TimeTerm(p.from_ms)),
          p.to_ms == INT64_MAX ? PrefixEnd(IndexBegin(IndexKind::kTime, ""))
                               : IndexBegin(IndexKind::kTime, TimeTerm(p.to_ms))};
}

inline Result<Period> CheckPeriod(const Period& p) {
  if (p.from_ms >= p.to_ms) {
    return Fail(Error::InvalidArgument("the period is empty: 'from' must be before 'to'"));
  }
  return p;
}

// The filter with level and source in upper case, or InvalidArgument naming the part that
// is wrong.
inline Result<Filter> CheckFilter(const Filter& in) {
  Filter f = in;
  G60_TRY(CheckPeriod(f.period));
  f.level = Upper(f.level);
  f.source = Upper(f.source);
  if (!f.source.empty()) {
    v1::FundingSource fs;
    if (!v1::FundingSource_Parse("FUNDING_SOURCE_" + f.source, &fs) ||
        fs == v1::FUNDING_SOURCE_UNSPECIFIED) {
      return Fail(Error::InvalidArgument(fmt::format(
          "source '{}' is not one of DISTRICT_SPECIAL_FUND, DISTRICT_FISCAL, MUNICIPAL_FISCAL",
          in.source)));
    }
  }
  if (!f.level.empty() && f.level != "DISTRICT" && f.level != "MUNICIPAL") {
    return Fail(
        Error::InvalidArgument(fmt::format("level '{}' is not DISTRICT or MUNICIPAL", in.level)));
  }
  if (!f.applicant_id.empty() && !ValidEventId(f.applicant_id)) {
    return Fail(Error::InvalidArgument(fmt::format(
        "applicant '{}' is not an applicant id (1..128 printable characters)", in.applicant_id)));
  }
  if (!f.programme.empty() && !ValidEventId(f.programme)) {
    return Fail(
        Error::InvalidArgument(fmt::format("programme '{}' is not a programme id", in.programme)));
  }
  if (f.min_fen > f.max_fen) {
    return Fail(Error::InvalidArgument(fmt::format(
        "the amount range is empty: min_fen {} is above max_fen {}", f.min_fen, f.max_fen)));
  }
  return f;
}

// What a row is filtered on.
struct Facts {
  std::string_view applicant, programme, level, source;
  int64_t amount_fen = 0;
  int64_t when_ms = 0;
};

inline bool Matches(const Filter& f, const Facts& x) {
  return (f.applicant_id.empty() || x.applicant == f.applicant_id) &&
         (f.programme.empty() || x.programme == f.programme) &&
         (f.level.empty() || x.level == f.level) && (f.source.empty() || x.source == f.source) &&
         x.amount_fen >= f.min_fen && x.amount_fen <= f.max_fen && x.when_ms >= f.period.from_ms &&
         x.when_ms < f.period.to_ms;
}

// The level of a programme in the catalogue (DISTRICT, MUNICIPAL), "" when unknown.
inline std::string LevelOf(const std::shared_ptr<const CatalogIndex>& catalog,
                           std::string_view programme) {
  const v1::Programme* p = catalog ? catalog->Find(programme) : nullptr;
  return p ? LevelName(p->level()) : "";
}

// Walks table approvals: `visit` gets each key (partition u32 BE || approval id) and state.
inline Status WalkApprovals(
    const lmdb::Txn& txn, const Tables& t,
    const std::function<Result<bool>(std::string_view, const ledger::v1::ApprovalState&)>& visit) {
  return Walk(txn, t.approvals, "", "",
              [&](std::string_view k, std::string_view v) -> Result<bool> {
                ledger::v1::ApprovalState st;
                if (!st.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
                  return Fail(Error::DataLoss("an approval state does not parse"));
                }
                return visit(k, st);
              });
}

// The fields every row about a stored application or approval carries.
inline json StateRow(int64_t when_ms, const std::string& applicant, const char* id_column,
                     std::string_view id, const std::string& programme, const std::string& level,
                     const std::string& project, uint32_t partition, uint64_t sequence) {
  return json{{"occurred_at", FormatCst(when_ms)},
              {"applicant_id", applicant},
              {id_column, std::string(id)},
              {"programme", programme},
              {"level", level},
              {"project_id", project},
              {"partition", partition},
              {"sequence", sequence}};
}

// A state record of table `dbi` (key partition || EventKey(id, applicant)): empty when
// absent, DataLoss when it does not parse.
template <typename State>
Result<State> StateAt(const lmdb::Txn& txn, MDB_dbi dbi, uint32_t p, std::string_view applicant,
                      std::string_view id, const char* what) {
  State st;
  auto v = txn.Get(dbi, PartitionKey(p, EventKey(id, applicant)));
  if (!v) return Fail(v.error());
  if (*v && !st.ParseFromArray((**v).data(), static_cast<int>((**v).size()))) {
    return Fail(Error::DataLoss(fmt::format("{} {} state does not parse", what, id)));
  }
  return st;
}

// Event `id` of `applicant` (events name one another within their applicant).
inline Result<ledger::v1::ApprovalState> ApprovalAt(const lmdb::Txn& txn, const Tables& t,
                                                    uint32_t p, std::string_view applicant,
                                                    std::string_view id) {
  return StateAt<ledger::v1::ApprovalState>(txn, t.approvals, p, applicant, id, "approval");
}

inline Result<ledger::v1::ApplicationState> ApplicationAt(const lmdb::Txn& txn, const Tables& t,
                                                          uint32_t p, std::string_view applicant,
                                                          std::string_view id) {
  return StateAt<ledger::v1::ApplicationState>(txn, t.applications, p, applicant, id,
                                               "application");
}

// Opens a read transaction and starts an answer with the position it reads at.
struct Snapshot {
  lmdb::Txn txn;
  QueryResult out;
};
inline Result<Snapshot> Begin(const Ledger& ledger, std::string title) {
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Fail(txn.error());
  auto pos = LedgerPosition(*txn, ledger.tables());
  if (!pos) return Fail(pos.error());
  QueryResult out;
  out.title = std::move(title);
  out.position = std::move(*pos);
  return Snapshot{std::move(*txn), std::move(out)};
}

// A paged answer over one snapshot: the filter as checked, the read transaction, the
// answer and its pager (which points into the answer, so a Listing stays where it is made).
struct Listing {
  Filter filter;
  lmdb::Txn txn;
  QueryResult out;
  Pager pager;
  Listing(Filter f, Snapshot snap, const Page& page, std::string after)
      : filter(std::move(f)),
        txn(std::move(snap.txn)),
        out(std::move(snap.out)),
        pager{page.limit, std::move(after), out, {}, false} {}
};
inline Result<std::unique_ptr<Listing>> BeginListing(const Ledger& ledger, std::string title,
                                                     const Page& page, const Filter& filter) {
  G60_TRY(CheckPage(page));
  auto f = CheckFilter(filter);
  if (!f) return Fail(f.error());
  auto after = DecodeToken(page.after);
  if (!after) return Fail(after.error());
  auto snap = Begin(ledger, std::move(title));
  if (!snap) return Fail(snap.error());
  return std::make_unique<Listing>(std::move(*f), std::move(*snap), page, std::move(*after));
}

// Rows counted and an amount added up per programme, for a summary.
class PerProgramme {
 public:
  void Add(const std::string& programme, int64_t fen) {
    auto& [n, sum] = sums_[programme];
    ++n;
    sum += fen;
  }
  json Summary(const char* count, const char* amount) const {
    json out = json::array();
    for (const auto& [p, v] : sums_)
      out.push_back({{"programme", p}, {count, v.first}, {amount, v.second}});
    return out;
  }

 private:
  std::map<std::string, std::pair<uint64_t, int64_t>> sums_;
};

}  // namespace g60::query_internal
