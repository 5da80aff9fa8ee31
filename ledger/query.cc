#include "ledger/query.h"

#include <fmt/format.h>

#include <cctype>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "ledger/bytes.h"
#include "ledger/catalog.h"
#include "ledger/checkpoint.h"
#include "ledger/crypto.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ledger/index.h"
#include "ledger/query_internal.h"

namespace g60 {

using nlohmann::json;
using namespace query_internal;

std::string FormatCst(int64_t ms) {
  if (ms <= 0) return "";
  std::string t = FormatCstTime(ms);  // "YYYY-MM-DD hh:mm:ss CST", clamped to 0001..9999
  return t.substr(0, t.size() - 4);
}

namespace {

// Adds a programme's activity in one partition (or one row) to a sum.
void AddTotals(ledger::v1::ProgrammeYearTotals& s, const ledger::v1::ProgrammeYearTotals& part) {
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

// The counts and amounts of a utilisation row (and of its totals row).
json ActivityFields(const ledger::v1::ProgrammeYearTotals& s) {
  return json{{"applications", s.applications()},
              {"approvals", s.approvals()},
              {"approved_fen", s.approved_fen()},
              {"payments", s.payments()},
              {"paid_fen", s.paid_fen()},
              {"clawbacks", s.clawbacks()},
              {"clawed_back_fen", s.clawed_back_fen()},
              {"net_paid_fen", s.paid_fen() - s.clawed_back_fen()},
              {"rejected", s.rejected()}};
}

// Accepted approvals above min(ratio x the application's declared base, the absolute cap)
// of their programme in `catalog` (the rule of EXCEEDS_CAP), counted per (programme, CST
// year of the approval).
Result<std::map<std::pair<std::string, int>, uint64_t>> ApprovalsOverRatio(
    const lmdb::Txn& txn, const Tables& t, const std::shared_ptr<const CatalogIndex>& catalog) {
  std::map<std::pair<std::string, int>, uint64_t> out;
  if (!catalog) return out;
  G60_TRY(WalkApprovals(
      txn, t, [&](std::string_view k, const ledger::v1::ApprovalState& st) -> Result<bool> {
        const v1::Programme* p = catalog->Find(st.programme());
        if (!p || p->ratio_bp() == 0) return false;
        uint32_t part = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto app = ApplicationAt(txn, t, part, st.applicant_id(), st.application_event_id());
        if (!app) return Fail(app.error());
        auto limit = ApplyRatio(app->declared_base_fen(), p->ratio_bp());
        int64_t bound = limit ? *limit : INT64_MAX;
        if (p->cap_fen() > 0) bound = std::min(bound, p->cap_fen());
        if (st.approved_fen() <= bound) return false;
        auto r = ReadAt(txn, t, IndexPosition{part, st.seq()});
        if (!r) return Fail(r.error());
        ++out[{st.programme(), CstYear(r->msg.event.occurred_at_ms())}];
        return true;
      }));
  return out;
}

}  // namespace

Result<json> LedgerPosition(const lmdb::Txn& txn, const Tables& tables) {
  auto heads = ReadHeads(txn, tables);
  if (!heads) return Fail(heads.error());
  json out = json::array();
  for (const auto& h : *heads) {
    auto cp = LatestCheckpoint(txn, tables, h.partition);
    if (!cp) return Fail(cp.error());
    out.push_back({{"partition", h.partition},
                   {"size", h.size},
                   {"checkpoint_size", *cp ? json((*cp)->size) : json(nullptr)},
                   {"covered", *cp && (*cp)->size == h.size}});
  }
  return out;
}

std::string FormatPosition(const json& position) {
  std::string out = "position";
  for (const auto& p : position) {
    out += fmt::format(" {}:{}/{}", p["partition"].get<uint32_t>(), p["size"].get<uint64_t>(),
                       p["checkpoint_size"].is_null()
                           ? std::string("-")
                           : std::to_string(p["checkpoint_size"].get<uint64_t>()));
  }
  return out + " (partition:size/size of the latest signed checkpoint)";
}

Result<std::map<std::string, std::string>> CatalogueVersions(const lmdb::Txn& txn,
                                                             const Tables& tables) {
  std::map<std::string, std::string> out;
  G60_TRY(Walk(txn, tables.catalog_blobs, "", "",
               [&](std::string_view k, std::string_view v) -> Result<bool> {
                 v1::Catalog c;
                 if (!c.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
                   return Fail(Error::DataLoss("a stored catalogue does not parse"));
                 }
                 out[std::string(k)] = c.version();
                 return true;
               }));
  return out;
}

json QueryResult::ToJson() const {
  json j;
  j["query"] = title;
  j["columns"] = columns;
  j["rows"] = rows;
  j["summary"] = summary;
  j["next"] = next.empty() ? json(nullptr) : json(next);
  j["position"] = position;
  return j;
}

Result<int64_t> ParseCstTime(std::string_view text, std::string_view what) {
  if (text.size() == 10) {
    auto d = CstDateToMs(text);
    if (!d) return Fail(Error::InvalidArgument(fmt::format("{}: {}", what, d.error().message())));
    return *d;
  }
  // HH:MM:SS exactly: two digits each (scanf's %2u would also take "+1" or " 2").
  auto two = [&](size_t at) -> int {
    unsigned char a = static_cast<unsigned char>(text[at]);
    unsigned char b = static_cast<unsigned char>(text[at + 1]);
    return std::isdigit(a) && std::isdigit(b) ? (a - '0') * 10 + (b - '0') : -1;
  };
  if (text.size() == 19 && text[10] == 'T' && text[13] == ':' && text[16] == ':') {
    int hh = two(11), mm = two(14), ss = two(17);
    if (hh >= 0 && hh < 24 && mm >= 0 && mm < 60 && ss >= 0 && ss < 60) {
      auto d = CstDateToMs(text.substr(0, 10));
      if (d) return *d + ((hh * 60 + mm) * 60 + ss) * int64_t{1000};
    }
  }
  return Fail(Error::InvalidArgument(fmt::format(
      "{} '{}' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (China Standard Time)", what, text)));
}

Result<QueryResult> Queries::Applicant(std::string_view applicant_id, const Page& page,
                                       const Filter& filter) const {
  if (!ValidEventId(applicant_id)) {
    return Fail(Error::InvalidArgument(
        fmt::format("'{}' is not an applicant id (1..128 printable characters)", applicant_id)));
  }
  Filter others = filter;  // the applicant is the argument
  others.applicant_id.clear();
  auto listing =
      BeginListing(ledger_, fmt::format("history of applicant {}", applicant_id), page, others);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, txn);
  if (!catalog) return Fail(catalog.error());
  auto versions = CatalogueVersions(txn, t);
  if (!versions) return Fail(versions.error());
  out.columns = kEntryColumns;
  std::string begin = IndexBegin(IndexKind::kApplicant, IndexTerm(applicant_id));
  struct Totals {
    int64_t approved = 0, paid = 0, clawed_back = 0;
    uint64_t entries = 0, rejected = 0;
  };
  std::map<std::string, Totals> by_programme;
  bool any = false;
  G60_TRY(WalkEntries(
      txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
        const auto& b = r.entry.body;
        any = true;
        const auto& e = r.msg.event;
        std::string level = LevelOf(*catalog, b.programme());
        std::string source = e.has_stage_payment() ? SourceName(e.stage_payment().source()) : "";
        if (!Matches(f, {b.applicant_id(), b.programme(), level, source, EventAmount(e),
                         IndexedTime(r)})) {
          return false;
        }
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
        return pager.Offer(k, EntryRow(r, *versions));
      }));
  pager.Finish();
  if (!any) {
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
  return std::move(out);
}

Result<QueryResult> Queries::Utilisation(std::string_view programme, int year) const {
  auto snap =
      Begin(ledger_, programme.empty() ? std::string("utilisation of every programme")
                                       : fmt::format("utilisation of programme {}", programme));
  if (!snap) return Fail(snap.error());
  auto& [txn, out] = *snap;
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, txn);
  if (!catalog) return Fail(catalog.error());
  if (!programme.empty() && *catalog && !(*catalog)->Find(programme)) {
    return Fail(
        Error::NotFound(fmt::format("programme {} is not in the catalogue in force", programme)));
  }
  std::map<std::pair<std::string, int>, ledger::v1::ProgrammeYearTotals> sums;
  std::string begin = programme.empty() ? std::string() : std::string(programme) + '\0';
  auto cur = lmdb::Cursor::Open(txn, t.totals);
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
    AddTotals(sums[{prog, y}], part);
  }
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
                 "over_ratio_approvals",
                 "over_cap"};
  // Programmes of the catalogue without activity (in the year asked for) get a zero row.
  if (*catalog) {
    for (const auto& [id, prog] : (*catalog)->programmes) {
      if (!programme.empty() && id != programme) continue;
      auto at = sums.lower_bound({id, 0});
      if (at == sums.end() || at->first.first != id) sums[{id, year}];
    }
  }
  auto over_ratio = ApprovalsOverRatio(txn, t, *catalog);
  if (!over_ratio) return Fail(over_ratio.error());
  ledger::v1::ProgrammeYearTotals all;
  for (const auto& [key, s] : sums) {
    const v1::Programme* p = *catalog ? (*catalog)->Find(key.first) : nullptr;
    int64_t cap = 0;
    if (p) cap = p->cap_fen() > 0 ? p->cap_fen() : p->fixed_fen();
    uint64_t over = over_ratio->count(key) ? over_ratio->at(key) : 0;
    json row = ActivityFields(s);
    row.update({{"programme", key.first},
                {"level", p ? LevelName(p->level()) : ""},
                {"year", key.second == 0 ? json(nullptr) : json(key.second)},
                {"largest_approval_fen", s.largest_approval_fen()},
                {"cap_per_approval_fen", cap},
                {"yearly_cap_fen", p ? p->yearly_cap_fen() : 0},
                {"window_cap_fen", p ? p->window_cap_fen() : 0},
                {"over_ratio_approvals", over},
                {"over_cap", (cap > 0 && s.largest_approval_fen() > cap) || over > 0}});
    out.rows.push_back(std::move(row));
    AddTotals(all, s);
  }
  if (!programme.empty() && out.rows.empty() && !*catalog) {
    return Fail(Error::NotFound(fmt::format("programme {} has no entry", programme)));
  }
  json total = ActivityFields(all);
  total["programme"] = "total";
  out.summary = json::array({total});
  return std::move(out);
}

Result<QueryResult> Queries::Payments(const Filter& filter, const Page& page) const {
  auto listing = BeginListing(ledger_, "stage payments", page, filter);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, txn);
  if (!catalog) return Fail(catalog.error());
  out.columns = {"occurred_at", "applicant_id", "event_id", "approval_event_id",
                 "stage",       "programme",    "level",    "source",
                 "amount_fen",  "partition",    "sequence"};
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, int64_t>> totals;
  auto [begin, end] = TimeRange(f.period);
  G60_TRY(WalkEntries(txn, t, begin, end, [&](std::string_view k, const Read& r) -> Result<bool> {
    const auto& b = r.entry.body;
    if (b.event_type() != EventType::EVENT_TYPE_STAGE_PAYMENT ||
        b.verdict() != ledger::v1::VERDICT_ACCEPTED) {
      return false;
    }
    const auto& sp = r.msg.event.stage_payment();
    std::string lvl = LevelOf(*catalog, b.programme());
    std::string src = SourceName(sp.source());
    if (!Matches(f, {b.applicant_id(), b.programme(), lvl, src, b.amount_fen(),
                     r.msg.event.occurred_at_ms()})) {
      return false;
    }
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
  return std::move(out);
}

Result<QueryResult> Queries::Rejections(const Filter& filter, std::string_view reason,
                                        const Page& page) const {
  std::optional<Reason> want;
  if (!reason.empty()) {
    Reason r;
    if (!ledger::v1::Reason_Parse("REASON_" + Upper(reason), &r) || r == Reason::REASON_NONE) {
      return Fail(Error::InvalidArgument(fmt::format(
          "reason '{}' is not a rejection reason of docs/formats.md (e.g. EXCEEDS_CAP)", reason)));
    }
    want = r;
  }
  auto listing = BeginListing(ledger_, "rejections", page, filter);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, txn);
  if (!catalog) return Fail(catalog.error());
  auto versions = CatalogueVersions(txn, t);
  if (!versions) return Fail(versions.error());
  out.columns = kEntryColumns;
  std::map<std::pair<std::string, std::string>, uint64_t> counts;  // (reason, programme)
  auto [begin, end] = TimeRange(f.period);
  G60_TRY(WalkEntries(txn, t, begin, end, [&](std::string_view k, const Read& r) -> Result<bool> {
    const auto& b = r.entry.body;
    if (b.verdict() == ledger::v1::VERDICT_ACCEPTED) return false;
    if (want && b.reason() != *want) return false;
    const auto& e = r.msg.event;
    std::string source = e.has_stage_payment() ? SourceName(e.stage_payment().source()) : "";
    if (!Matches(f, {b.applicant_id(), b.programme(), LevelOf(*catalog, b.programme()), source,
                     EventAmount(e), IndexedTime(r)})) {
      return false;
    }
    ++counts[{ReasonName(b.reason()), b.programme()}];
    return pager.Offer(k, EntryRow(r, *versions));
  }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [key, n] : counts)
    out.summary.push_back({{"reason", key.first}, {"programme", key.second}, {"rejected", n}});
  return std::move(out);
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
  auto snap = Begin(ledger_, "overlap decisions (从优、就高、不重复)");
  if (!snap) return Fail(snap.error());
  auto& [txn, out] = *snap;
  const Tables& t = ledger_.tables();
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
  G60_TRY(WalkApprovals(
      txn, t, [&](std::string_view k, const ledger::v1::ApprovalState& st) -> Result<bool> {
        if (st.superseded_by().empty()) return false;
        ++superseded;
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto w = ApprovalAt(txn, t, p, st.applicant_id(), st.superseded_by());
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
      txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
        ++duplicates;
        const auto& b = r.entry.body;
        std::string winner;
        for (const auto& e : b.effects()) {
          if (e.rfind(kDuplicateOfNote, 0) == 0) winner = e.substr(kDuplicateOfNote.size());
        }
        ledger::v1::ApprovalState w;
        if (!winner.empty()) {
          auto ws =
              ApprovalAt(txn, t, r.entry.header.partition, r.msg.event.applicant_id(), winner);
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
  return std::move(out);
}

Result<QueryResult> Queries::Outstanding(const Page& page) const {
  auto listing = BeginListing(ledger_, "approved stages not yet paid", page, Filter{});
  if (!listing) return Fail(listing.error());
  auto& [unused_filter, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = {"applicant_id", "approval_event_id", "programme", "stage",
                 "amount_fen",   "approved_fen",      "paid_fen",  "partition"};
  PerProgramme by_programme;
  G60_TRY(WalkApprovals(
      txn, t, [&](std::string_view k, const ledger::v1::ApprovalState& st) -> Result<bool> {
        if (!st.superseded_by().empty()) return false;  // its unpaid stages are void
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        for (const auto& s : st.stages()) {
          if (!s.payment_event_id().empty()) continue;
          by_programme.Add(st.programme(), s.amount_fen());
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
  out.summary = by_programme.Summary("stages", "outstanding_fen");
  return std::move(out);
}

Result<QueryResult> Queries::Clawbacks(const Period& period, const Page& page) const {
  Filter in_period;
  in_period.period = period;
  auto listing = BeginListing(ledger_, "clawbacks", page, in_period);
  if (!listing) return Fail(listing.error());
  auto& [unused_filter, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = {"occurred_at", "applicant_id", "event_id",    "payments",  "approval_event_id",
                 "programme",   "amount_fen",   "reason_text", "partition", "sequence"};
  int64_t total = 0;
  uint64_t count = 0;
  std::string begin = IndexBegin(IndexKind::kType,
                                 std::string(1, static_cast<char>(EventType::EVENT_TYPE_CLAWBACK)));
  G60_TRY(WalkEntries(
      txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
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
              txn.Get(t.payments,
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
  return std::move(out);
}

namespace {

std::string Cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {  // e.g. the entries behind a flag: "0/63 app-1; 0/140 apr-1"
    std::string out;
    for (const auto& e : v) {
      out += out.empty() ? "" : "; ";
      out += e.is_object() && e.contains("partition") && e.contains("sequence")
                 ? fmt::format("{}/{} {}", e["partition"].get<uint32_t>(),
                               e["sequence"].get<uint64_t>(), e.value("event_id", ""))
                 : Cell(e);
    }
    return out;
  }
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  return v.dump();
}

// Amounts (*_fen) in CNY, shares (*_bp) in percent; the rest as it is.
std::string AmountCell(const std::string& column, const json& v) {
  if (column.ends_with("_fen") && v.is_number_integer()) return FormatFen(v.get<int64_t>());
  if (column.ends_with("_bp") && v.is_number_integer()) {
    int64_t bp = v.get<int64_t>();
    return fmt::format("{}{}.{:02d}%", bp < 0 ? "-" : "", std::abs(bp) / 100, std::abs(bp) % 100);
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
    // The group's name first (programme, source, level, reason, decision), then figures:
    // those that are columns of the rows in the rows' order, then the others.
    std::vector<std::string> cols;
    const json& first = r.summary[0];
    for (auto& [k, v] : first.items())
      if (v.is_string()) cols.push_back(k);
    for (const auto& c : r.columns)
      if (first.contains(c) && !first[c].is_string()) cols.push_back(c);
    for (auto& [k, v] : first.items())
      if (!v.is_string() && std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    out += "\nsummary\n" + Aligned(cols, r.summary.get<std::vector<json>>());
  }
  if (!r.next.empty()) out += fmt::format("\nmore: --after {}\n", r.next);
  if (!r.position.is_null()) out += "\n" + FormatPosition(r.position) + "\n";
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
