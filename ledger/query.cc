#include "ledger/query.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ledger/index.h"

namespace g60 {

using nlohmann::json;

std::string FormatCst(int64_t ms) {
  if (ms <= 0) return "";
  std::string t = FormatCstTime(ms);  // "YYYY-MM-DD hh:mm:ss CST", clamped to 0001..9999
  return t.substr(0, t.size() - 4);
}

namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string SourceName(v1::FundingSource s) {
  const std::string& n = v1::FundingSource_Name(s);
  return n.rfind("FUNDING_SOURCE_", 0) == 0 ? n.substr(15) : n;
}

std::string LevelName(v1::Level l) {
  const std::string& n = v1::Level_Name(l);
  return n.rfind("LEVEL_", 0) == 0 ? n.substr(6) : n;
}

struct Read {
  DecodedEntry entry;
  DecodedMessage msg;
};

Result<Read> ReadAt(const lmdb::Txn& txn, const Tables& t, IndexPosition at) {
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

json EntryRow(const Read& r) {
  json row = EntryBodyFields(r.entry.body);
  row["partition"] = r.entry.header.partition;
  row["sequence"] = r.entry.header.sequence;
  row["occurred_at"] = FormatCst(r.msg.event.occurred_at_ms());
  return row;
}

const std::vector<std::string> kEntryColumns = {
    "partition", "sequence", "occurred_at", "type",       "event_id", "applicant_id",
    "programme", "verdict",  "reason",      "amount_fen", "detail"};

// Walks every key of `dbi` in [begin, end) (end empty: to the table's end), so that a
// summary covers the whole range; `visit` gets each key and its value, and adds a row
// through a Pager when the key lies after the page token.
Status Walk(const lmdb::Txn& txn, MDB_dbi dbi, std::string_view begin, std::string_view end,
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

Result<std::string> DecodeToken(std::string_view token) {
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

Result<Pager> MakePager(const Page& page, QueryResult& out) {
  auto after = DecodeToken(page.after);
  if (!after) return Fail(after.error());
  return Pager{page.limit, *after, out, {}, false};
}

Status CheckPage(const Page& page) {
  if (page.limit < 1 || page.limit > 10000) {
    return Fail(Error::InvalidArgument("limit must be from 1 to 10000"));
  }
  return {};
}

std::string IndexBegin(IndexKind kind, std::string_view term) {
  std::string k(1, static_cast<char>(kind));
  k.append(term);
  return k;
}

// The end of the key range of keys starting with `prefix`.
std::string PrefixEnd(std::string prefix) {
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

IndexPosition PositionOfIndexKey(std::string_view key) {
  const auto* p = reinterpret_cast<const unsigned char*>(key.data() + key.size() - 12);
  return IndexPosition{GetU32BE(p), GetU64BE(p + 4)};
}

// Walks an index range, reading the entry each key points at.
Status WalkEntries(const lmdb::Txn& txn, const Tables& t, std::string_view begin,
                   std::string_view end,
                   const std::function<Result<bool>(std::string_view, const Read&)>& visit) {
  return Walk(txn, t.index, begin, end, [&](std::string_view k, std::string_view) -> Result<bool> {
    auto r = ReadAt(txn, t, PositionOfIndexKey(k));
    if (!r) return Fail(r.error());
    return visit(k, *r);
  });
}

// The catalogue in force in the lowest partition that has one.
Result<std::shared_ptr<const CatalogIndex>> CurrentCatalog(const Ledger& ledger,
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
std::pair<std::string, std::string> TimeRange(const Period& p) {
  return {IndexBegin(IndexKind::kTime, TimeTerm(p.from_ms)),
          p.to_ms == INT64_MAX ? PrefixEnd(IndexBegin(IndexKind::kTime, ""))
                               : IndexBegin(IndexKind::kTime, TimeTerm(p.to_ms))};
}

Result<Period> CheckPeriod(const Period& p) {
  if (p.from_ms >= p.to_ms) {
    return Fail(Error::InvalidArgument("the period is empty: 'from' must be before 'to'"));
  }
  return p;
}

}  // namespace

json QueryResult::ToJson() const {
  json j;
  j["query"] = title;
  j["columns"] = columns;
  j["rows"] = rows;
  j["summary"] = summary;
  j["next"] = next.empty() ? json(nullptr) : json(next);
  return j;
}

Result<int64_t> ParseCstTime(std::string_view text, std::string_view what) {
  if (text.size() == 10) {
    auto d = CstDateToMs(text);
    if (!d) return Fail(Error::InvalidArgument(fmt::format("{}: {}", what, d.error().message())));
    return *d;
  }
  unsigned hh = 0, mm = 0, ss = 0;
  char tail = 0;
  std::string s(text);
  if (s.size() == 19 && s[10] == 'T' &&
      std::sscanf(s.c_str() + 11, "%2u:%2u:%2u%c", &hh, &mm, &ss, &tail) == 3 && hh < 24 &&
      mm < 60 && ss < 60) {
    auto d = CstDateToMs(text.substr(0, 10));
    if (d) return *d + ((hh * 60 + mm) * 60 + ss) * int64_t{1000};
  }
  return Fail(Error::InvalidArgument(fmt::format(
      "{} '{}' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (China Standard Time)", what, text)));
}

Result<QueryResult> Queries::Applicant(std::string_view applicant_id, const Page& page) const {
  G60_TRY(CheckPage(page));
  if (!ValidEventId(applicant_id)) {
    return Fail(Error::InvalidArgument(
        fmt::format("'{}' is not an applicant id (1..128 printable characters)", applicant_id)));
  }
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  QueryResult out;
  out.title = fmt::format("history of applicant {}", applicant_id);
  out.columns = kEntryColumns;
  std::string begin = IndexBegin(IndexKind::kApplicant, IndexTerm(applicant_id));
  struct Totals {
    int64_t approved = 0, paid = 0, clawed_back = 0;
    uint64_t entries = 0, rejected = 0;
  };
  std::map<std::string, Totals> by_programme;
  auto pager_or = MakePager(page, out);
  if (!pager_or) return Fail(pager_or.error());
  Pager& pager = *pager_or;
  G60_TRY(WalkEntries(*txn, t, begin, PrefixEnd(begin),
                      [&](std::string_view k, const Read& r) -> Result<bool> {
                        const auto& b = r.entry.body;
                        Totals& tot = by_programme[b.programme()];
                        ++tot.entries;
                        if (b.verdict() != ledger::v1::VERDICT_ACCEPTED) {
                          ++tot.rejected;
                        } else if (b.event_type() == EventType::EVENT_TYPE_APPROVAL) {
                          tot.approved += b.amount_fen();
                        } else if (b.event_type() == EventType::EVENT_TYPE_STAGE_PAYMENT) {
                          tot.paid += b.amount_fen();
                        } else if (b.event_type() == EventType::EVENT_TYPE_CLAWBACK) {
                          tot.clawed_back += b.amount_fen();
                        }
                        return pager.Offer(k, EntryRow(r));
                      }));
  pager.Finish();
  if (by_programme.empty()) {
    return Fail(
        Error::NotFound(fmt::format("applicant {} has no entry in the ledger", applicant_id)));
  }
  out.summary = json::array();
  for (const auto& [p, tot] : by_programme) {
    out.summary.push_back({{"programme", p},
                           {"entries", tot.entries},
                           {"rejected", tot.rejected},
                           {"approved_fen", tot.approved},
                           {"paid_fen", tot.paid},
                           {"clawed_back_fen", tot.clawed_back}});
  }
  return out;
}

Result<QueryResult> Queries::Utilisation(std::string_view programme, int year) const {
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, *txn);
  if (!catalog) return Fail(catalog.error());
  if (!programme.empty() && *catalog && !(*catalog)->Find(programme)) {
    return Fail(
        Error::NotFound(fmt::format("programme {} is not in the catalogue in force", programme)));
  }
  std::map<std::pair<std::string, int>, ledger::v1::ProgrammeYearTotals> sums;
  std::string begin = programme.empty() ? std::string() : std::string(programme) + '\0';
  auto cur = lmdb::Cursor::Open(*txn, t.totals);
  if (!cur) return Fail(cur.error());
  for (auto ok = begin.empty() ? cur->First() : cur->Seek(begin);; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    std::string_view k = cur->key();
    size_t nul = k.find('\0');
    if (nul == std::string_view::npos || k.size() != nul + 7) {
      return Fail(Error::DataLoss("a totals key is malformed"));
    }
    std::string prog(k.substr(0, nul));
    if (!programme.empty() && prog != programme) break;
    int y = (static_cast<unsigned char>(k[nul + 1]) << 8) | static_cast<unsigned char>(k[nul + 2]);
    if (year != 0 && y != year) continue;
    ledger::v1::ProgrammeYearTotals part;
    if (!part.ParseFromArray(cur->value().data(), static_cast<int>(cur->value().size()))) {
      return Fail(Error::DataLoss("a totals value does not parse"));
    }
    auto& s = sums[{prog, y}];
    s.set_applications(s.applications() + part.applications());
    s.set_requested_fen(s.requested_fen() + part.requested_fen());
    s.set_approvals(s.approvals() + part.approvals());
    s.set_approved_fen(s.approved_fen() + part.approved_fen());
    s.set_payments(s.payments() + part.payments());
    s.set_paid_fen(s.paid_fen() + part.paid_fen());
    s.set_clawbacks(s.clawbacks() + part.clawbacks());
    s.set_clawed_back_fen(s.clawed_back_fen() + part.clawed_back_fen());
    s.set_rejected(s.rejected() + part.rejected());
    s.set_largest_approval_fen(std::max(s.largest_approval_fen(), part.largest_approval_fen()));
  }
  QueryResult out;
  out.title = programme.empty() ? "utilisation of every programme"
                                : fmt::format("utilisation of programme {}", programme);
  out.columns = {"programme",
                 "level",
                 "year",
                 "applications",
                 "approvals",
                 "approved_fen",
                 "payments",
                 "paid_fen",
                 "clawbacks",
                 "clawed_back_fen",
                 "net_paid_fen",
                 "rejected",
                 "largest_approval_fen",
                 "cap_per_approval_fen",
                 "yearly_cap_fen",
                 "window_cap_fen",
                 "over_cap"};
  for (const auto& [key, s] : sums) {
    const v1::Programme* p = *catalog ? (*catalog)->Find(key.first) : nullptr;
    int64_t cap = 0;
    if (p) cap = p->cap_fen() > 0 ? p->cap_fen() : p->fixed_fen();
    out.rows.push_back({{"programme", key.first},
                        {"level", p ? LevelName(p->level()) : ""},
                        {"year", key.second},
                        {"applications", s.applications()},
                        {"approvals", s.approvals()},
                        {"approved_fen", s.approved_fen()},
                        {"payments", s.payments()},
                        {"paid_fen", s.paid_fen()},
                        {"clawbacks", s.clawbacks()},
                        {"clawed_back_fen", s.clawed_back_fen()},
                        {"net_paid_fen", s.paid_fen() - s.clawed_back_fen()},
                        {"rejected", s.rejected()},
                        {"largest_approval_fen", s.largest_approval_fen()},
                        {"cap_per_approval_fen", cap},
                        {"yearly_cap_fen", p ? p->yearly_cap_fen() : 0},
                        {"window_cap_fen", p ? p->window_cap_fen() : 0},
                        {"over_cap", cap > 0 && s.largest_approval_fen() > cap}});
  }
  if (!programme.empty() && out.rows.empty() && !*catalog) {
    return Fail(Error::NotFound(fmt::format("programme {} has no entry", programme)));
  }
  return out;
}

Result<QueryResult> Queries::Payments(const Period& period, std::string_view source,
                                      std::string_view level, const Page& page) const {
  G60_TRY(CheckPage(page));
  G60_TRY(CheckPeriod(period));
  std::string want_source = Upper(source), want_level = Upper(level);
  if (!want_source.empty()) {
    v1::FundingSource fs;
    if (!v1::FundingSource_Parse("FUNDING_SOURCE_" + want_source, &fs) ||
        fs == v1::FUNDING_SOURCE_UNSPECIFIED) {
      return Fail(Error::InvalidArgument(fmt::format(
          "source '{}' is not one of DISTRICT_SPECIAL_FUND, DISTRICT_FISCAL, MUNICIPAL_FISCAL",
          source)));
    }
  }
  if (!want_level.empty() && want_level != "DISTRICT" && want_level != "MUNICIPAL") {
    return Fail(
        Error::InvalidArgument(fmt::format("level '{}' is not DISTRICT or MUNICIPAL", level)));
  }
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, *txn);
  if (!catalog) return Fail(catalog.error());
  QueryResult out;
  out.title = "stage payments";
  out.columns = {"occurred_at", "applicant_id", "event_id", "approval_event_id",
                 "stage",       "programme",    "level",    "source",
                 "amount_fen",  "partition",    "sequence"};
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, int64_t>> totals;
  auto pager_or = MakePager(page, out);
  if (!pager_or) return Fail(pager_or.error());
  Pager& pager = *pager_or;
  auto [begin, end] = TimeRange(period);
  G60_TRY(WalkEntries(*txn, t, begin, end, [&](std::string_view k, const Read& r) -> Result<bool> {
    const auto& b = r.entry.body;
    if (b.event_type() != EventType::EVENT_TYPE_STAGE_PAYMENT ||
        b.verdict() != ledger::v1::VERDICT_ACCEPTED) {
      return false;
    }
    const auto& sp = r.msg.event.stage_payment();
    const v1::Programme* p = *catalog ? (*catalog)->Find(b.programme()) : nullptr;
    std::string lvl = p ? LevelName(p->level()) : "";
    std::string src = SourceName(sp.source());
    if (!want_source.empty() && src != want_source) return false;
    if (!want_level.empty() && lvl != want_level) return false;
    auto& tot = totals[{src, lvl}];
    tot.first += 1;
    tot.second += b.amount_fen();
    return pager.Offer(k, json{{"occurred_at", FormatCst(r.msg.event.occurred_at_ms())},
                               {"applicant_id", b.applicant_id()},
                               {"event_id", b.event_id()},
                               {"approval_event_id", sp.approval_event_id()},
                               {"stage", sp.stage()},
                               {"programme", b.programme()},
                               {"level", lvl},
                               {"source", src},
                               {"amount_fen", b.amount_fen()},
                               {"partition", r.entry.header.partition},
                               {"sequence", r.entry.header.sequence}});
  }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [key, tot] : totals) {
    out.summary.push_back({{"source", key.first},
                           {"level", key.second},
                           {"payments", tot.first},
                           {"amount_fen", tot.second}});
  }
  return out;
}

Result<QueryResult> Queries::Rejections(const Period& period, std::string_view reason,
                                        const Page& page) const {
  G60_TRY(CheckPage(page));
  G60_TRY(CheckPeriod(period));
  std::optional<Reason> want;
  if (!reason.empty()) {
    Reason r;
    if (!ledger::v1::Reason_Parse("REASON_" + Upper(reason), &r) || r == Reason::REASON_NONE) {
      return Fail(Error::InvalidArgument(fmt::format(
          "reason '{}' is not a rejection reason of docs/formats.md (e.g. EXCEEDS_CAP)", reason)));
    }
    want = r;
  }
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  QueryResult out;
  out.title = "rejections";
  out.columns = kEntryColumns;
  std::map<std::string, uint64_t> counts;
  auto pager_or = MakePager(page, out);
  if (!pager_or) return Fail(pager_or.error());
  Pager& pager = *pager_or;
  auto [begin, end] = TimeRange(period);
  G60_TRY(WalkEntries(*txn, t, begin, end, [&](std::string_view k, const Read& r) -> Result<bool> {
    const auto& b = r.entry.body;
    if (b.verdict() == ledger::v1::VERDICT_ACCEPTED) return false;
    if (want && b.reason() != *want) return false;
    ++counts[ReasonName(b.reason())];
    return pager.Offer(k, EntryRow(r));
  }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [name, n] : counts)
    out.summary.push_back({{"reason", name}, {"rejected", n}});
  return out;
}

Result<QueryResult> Queries::Overlaps(const Page& page) const {
  G60_TRY(CheckPage(page));
  // Two sources, in turn: approvals superseded (table approvals), then approvals rejected
  // as DUPLICATE_SUPPORT (reason index). A token is the source's letter and a key.
  char phase = 'a';
  std::string after;
  if (!page.after.empty()) {
    auto raw = DecodeToken(page.after.substr(1));
    if (!raw || (page.after[0] != 'a' && page.after[0] != 'd')) {
      return Fail(Error::InvalidArgument("the page token is not one this query gave"));
    }
    phase = page.after[0];
    after = *raw;
  }
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  QueryResult out;
  out.title = "overlap decisions (从优、就高、不重复)";
  out.columns = {"decision",         "applicant_id",     "approval_event_id", "programme",
                 "approved_fen",     "winning_approval", "winning_programme", "winning_fen",
                 "carried_over_fen", "partition",        "sequence"};
  uint64_t superseded = 0, duplicates = 0;
  std::string last;
  bool more = false;
  auto offer = [&](char source, std::string_view key, json row) {
    if (source < phase || (source == phase && !after.empty() && key <= after)) return;
    if (out.rows.size() >= page.limit) {
      more = true;
      return;
    }
    out.rows.push_back(std::move(row));
    last = std::string(1, source) + HexEncode(key);
  };
  auto approval_state = [&](uint32_t p, std::string_view applicant,
                            std::string_view id) -> Result<ledger::v1::ApprovalState> {
    ledger::v1::ApprovalState st;
    auto v = txn->Get(t.approvals, PartitionKey(p, EventKey(id, applicant)));
    if (!v) return Fail(v.error());
    if (*v && !st.ParseFromArray((**v).data(), static_cast<int>((**v).size()))) {
      return Fail(Error::DataLoss(fmt::format("approval {} state does not parse", id)));
    }
    return st;
  };
  G60_TRY(
      Walk(*txn, t.approvals, "", "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        ledger::v1::ApprovalState st;
        if (!st.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          return Fail(Error::DataLoss("an approval state does not parse"));
        }
        if (st.superseded_by().empty()) return false;
        ++superseded;
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto w = approval_state(p, st.applicant_id(), st.superseded_by());
        if (!w) return Fail(w.error());
        offer('a', k,
              json{{"decision", "superseded"},
                   {"applicant_id", st.applicant_id()},
                   {"approval_event_id", std::string(EventKeyId(k.substr(4)))},
                   {"programme", st.programme()},
                   {"approved_fen", st.approved_fen()},
                   {"winning_approval", st.superseded_by()},
                   {"winning_programme", w->programme()},
                   {"winning_fen", w->approved_fen()},
                   {"carried_over_fen", w->carried_over_fen()},
                   {"partition", p},
                   {"sequence", st.seq()}});
        return true;
      }));
  std::string reason(2, '\0');
  reason[1] = static_cast<char>(Reason::REASON_DUPLICATE_SUPPORT);
  std::string begin = IndexBegin(IndexKind::kReason, reason);
  G60_TRY(WalkEntries(
      *txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
        ++duplicates;
        const auto& b = r.entry.body;
        std::string winner;
        for (const auto& e : b.effects()) {
          if (e.rfind(kDuplicateOfNote, 0) == 0) winner = e.substr(kDuplicateOfNote.size());
        }
        ledger::v1::ApprovalState w;
        if (!winner.empty()) {
          auto ws = approval_state(r.entry.header.partition, r.msg.event.applicant_id(), winner);
          if (!ws) return Fail(ws.error());
          w = *ws;
        }
        offer('d', k,
              json{{"decision", "duplicate rejected"},
                   {"applicant_id", b.applicant_id()},
                   {"approval_event_id", b.event_id()},
                   {"programme", b.programme()},
                   {"approved_fen", r.msg.event.approval().approved_fen()},
                   {"winning_approval", winner},
                   {"winning_programme", w.programme()},
                   {"winning_fen", w.approved_fen()},
                   {"carried_over_fen", 0},
                   {"partition", r.entry.header.partition},
                   {"sequence", r.entry.header.sequence}});
        return true;
      }));
  if (more) out.next = last;
  out.summary = json::array({{{"decision", "superseded"}, {"count", superseded}},
                             {{"decision", "duplicate rejected"}, {"count", duplicates}}});
  return out;
}

Result<QueryResult> Queries::Outstanding(const Page& page) const {
  G60_TRY(CheckPage(page));
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  QueryResult out;
  out.title = "approved stages not yet paid";
  out.columns = {"applicant_id", "approval_event_id", "programme", "stage",
                 "amount_fen",   "approved_fen",      "paid_fen",  "partition"};
  std::map<std::string, std::pair<uint64_t, int64_t>> by_programme;
  auto pager_or = MakePager(page, out);
  if (!pager_or) return Fail(pager_or.error());
  Pager& pager = *pager_or;
  G60_TRY(
      Walk(*txn, t.approvals, "", "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        ledger::v1::ApprovalState st;
        if (!st.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          return Fail(Error::DataLoss("an approval state does not parse"));
        }
        if (!st.superseded_by().empty()) return false;  // its unpaid stages are void
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        for (const auto& s : st.stages()) {
          if (!s.payment_event_id().empty()) continue;
          auto& tot = by_programme[st.programme()];
          tot.first += 1;
          tot.second += s.amount_fen();
          // A row per stage; the key orders stages within an approval.
          std::string key(k);
          PutU32BE(key, s.number());
          pager.Offer(key, json{{"applicant_id", st.applicant_id()},
                                {"approval_event_id", std::string(EventKeyId(k.substr(4)))},
                                {"programme", st.programme()},
                                {"stage", s.number()},
                                {"amount_fen", s.amount_fen()},
                                {"approved_fen", st.approved_fen()},
                                {"paid_fen", st.paid_fen()},
                                {"partition", p}});
        }
        return true;
      }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [p, tot] : by_programme) {
    out.summary.push_back(
        {{"programme", p}, {"stages", tot.first}, {"outstanding_fen", tot.second}});
  }
  return out;
}

Result<QueryResult> Queries::Clawbacks(const Period& period, const Page& page) const {
  G60_TRY(CheckPage(page));
  G60_TRY(CheckPeriod(period));
  auto txn = lmdb::Txn::Begin(ledger_.env(), true);
  if (!txn) return Fail(txn.error());
  const Tables& t = ledger_.tables();
  QueryResult out;
  out.title = "clawbacks";
  out.columns = {"occurred_at", "applicant_id", "event_id",    "payments",  "approval_event_id",
                 "programme",   "amount_fen",   "reason_text", "partition", "sequence"};
  int64_t total = 0;
  uint64_t count = 0;
  auto pager_or = MakePager(page, out);
  if (!pager_or) return Fail(pager_or.error());
  Pager& pager = *pager_or;
  std::string begin = IndexBegin(IndexKind::kType,
                                 std::string(1, static_cast<char>(EventType::EVENT_TYPE_CLAWBACK)));
  G60_TRY(WalkEntries(
      *txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
        const auto& b = r.entry.body;
        int64_t when = r.msg.event.occurred_at_ms();
        if (b.verdict() != ledger::v1::VERDICT_ACCEPTED || when < period.from_ms ||
            when >= period.to_ms) {
          return false;
        }
        const auto& c = r.msg.event.clawback();
        std::string payments;
        for (const auto& id : c.payment_event_ids())
          payments += (payments.empty() ? "" : " ") + id;
        std::string approval;
        if (c.payment_event_ids_size() > 0) {
          auto v =
              txn->Get(t.payments,
                       PartitionKey(r.entry.header.partition,
                                    EventKey(c.payment_event_ids(0), r.msg.event.applicant_id())));
          if (!v) return Fail(v.error());
          ledger::v1::PaymentState ps;
          if (*v && ps.ParseFromArray((**v).data(), static_cast<int>((**v).size()))) {
            approval = ps.approval_event_id();
          }
        }
        ++count;
        total += b.amount_fen();
        return pager.Offer(k, json{{"occurred_at", FormatCst(when)},
                                   {"applicant_id", b.applicant_id()},
                                   {"event_id", b.event_id()},
                                   {"payments", payments},
                                   {"approval_event_id", approval},
                                   {"programme", b.programme()},
                                   {"amount_fen", b.amount_fen()},
                                   {"reason_text", c.reason()},
                                   {"partition", r.entry.header.partition},
                                   {"sequence", r.entry.header.sequence}});
      }));
  pager.Finish();
  out.summary = json::array({{{"clawbacks", count}, {"amount_fen", total}}});
  return out;
}

namespace {

std::string Cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  return v.dump();
}

std::string AmountCell(const std::string& column, const json& v) {
  if (column.size() > 4 && column.substr(column.size() - 4) == "_fen" && v.is_number_integer()) {
    return FormatFen(v.get<int64_t>());
  }
  return Cell(v);
}

std::string Aligned(const std::vector<std::string>& columns, const std::vector<json>& rows) {
  std::vector<size_t> width;
  std::vector<std::vector<std::string>> cells;
  for (const auto& c : columns)
    width.push_back(c.size());
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string s = r.contains(columns[i]) ? AmountCell(columns[i], r[columns[i]]) : "";
      width[i] = std::max(width[i], s.size());
      line.push_back(std::move(s));
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    std::string l;
    for (size_t i = 0; i < line.size(); ++i) {
      bool number = !line[i].empty() &&
                    (std::isdigit(static_cast<unsigned char>(line[i][0])) || line[i][0] == '-');
      std::string pad(width[i] - std::min(width[i], line[i].size()), ' ');
      l += (i ? "  " : "") + (number && &line != &columns ? pad + line[i] : line[i] + pad);
    }
    while (!l.empty() && l.back() == ' ')
      l.pop_back();
    out += l + "\n";
  };
  emit(columns);
  for (const auto& line : cells)
    emit(line);
  return out;
}

}  // namespace

namespace {

// An integer or decimal number ("-12", "3.5"): a spreadsheet reads it as the number it
// is, so it needs no neutralising (and a quote in front would turn it into text).
bool IsPlainNumber(std::string_view s) {
  size_t i = s.starts_with('-') ? 1 : 0;
  size_t digits = 0, dots = 0;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      ++digits;
    } else if (s[i] == '.' && dots == 0) {
      ++dots;
    } else {
      return false;
    }
  }
  return digits > 0;
}

}  // namespace

std::string CsvField(const std::string& s) {
  // OWASP's rule against CSV injection: a cell that starts with = + - @ TAB or CR is a
  // formula to Excel, LibreOffice and Google Sheets; a single quote in front makes it
  // text. Applicant ids, details and keys come from outside, forged records included.
  std::string cell = s;
  if (!cell.empty() && std::string_view("=+-@\t\r").find(cell[0]) != std::string_view::npos &&
      !IsPlainNumber(cell)) {
    cell.insert(0, 1, '\'');
  }
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string out = "\"";
  for (char c : cell)
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string FormatTable(const QueryResult& r) {
  std::string out = r.title + "\n\n" + Aligned(r.columns, r.rows);
  out += fmt::format("({} row{})\n", r.rows.size(), r.rows.size() == 1 ? "" : "s");
  if (r.summary.is_array() && !r.summary.empty()) {
    // The group's name first (programme, source, level, reason, decision), then figures.
    std::vector<std::string> cols;
    for (auto& [k, v] : r.summary[0].items())
      if (v.is_string()) cols.push_back(k);
    for (auto& [k, v] : r.summary[0].items())
      if (!v.is_string()) cols.push_back(k);
    out += "\nsummary\n" + Aligned(cols, r.summary.get<std::vector<json>>());
  }
  if (!r.next.empty()) out += fmt::format("\nmore: --after {}\n", r.next);
  return out;
}

std::string FormatCsv(const QueryResult& r) {
  std::string out;
  for (size_t i = 0; i < r.columns.size(); ++i)
    out += (i ? "," : "") + CsvField(r.columns[i]);
  out += "\r\n";
  for (const auto& row : r.rows) {
    for (size_t i = 0; i < r.columns.size(); ++i) {
      out += (i ? "," : "") + CsvField(row.contains(r.columns[i]) ? Cell(row[r.columns[i]]) : "");
    }
    out += "\r\n";
  }
  return out;
}

json EntryBodyFields(const ledger::v1::EntryBody& b) {
  return json{{"type", EventTypeName(b.event_type())},
              {"event_id", b.event_id()},
              {"applicant_id", b.applicant_id()},
              {"programme", b.programme()},
              {"verdict", b.verdict() == ledger::v1::VERDICT_ACCEPTED ? "ACCEPTED" : "REJECTED"},
              {"reason", ReasonName(b.reason())},
              {"amount_fen", b.amount_fen()},
              {"detail", b.detail()}};
}

}  // namespace g60
