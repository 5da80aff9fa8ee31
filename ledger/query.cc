#include "ledger/query.h"

#include <fmt/format.h>

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

using Versions = std::map<std::string, std::string>;  // catalogue hash -> version

// An entry as a row; `catalog` is the version of the catalogue it was decided under.
json EntryRow(const Read& r, const Versions& versions) {
  json row = EntryBodyFields(r.entry.body);
  row["partition"] = r.entry.header.partition;
  row["sequence"] = r.entry.header.sequence;
  row["occurred_at"] = FormatCst(r.msg.event.occurred_at_ms());
  auto v = versions.find(r.entry.body.catalog_hash());
  row["catalog"] = v == versions.end() ? "" : v->second;
  return row;
}

const std::vector<std::string> kEntryColumns = {
    "partition", "sequence", "occurred_at", "type",       "event_id", "applicant_id",
    "programme", "verdict",  "reason",      "amount_fen", "detail",   "catalog"};

// The amount an event names: requested, approved, paid or clawed back (0 for others).
int64_t EventAmount(const v1::Event& e) {
  if (e.has_application()) return e.application().requested_fen();
  if (e.has_approval()) return e.approval().approved_fen();
  if (e.has_stage_payment()) return e.stage_payment().amount_fen();
  if (e.has_clawback()) return e.clawback().amount_fen();
  return 0;
}

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

// The filter with level and source in upper case, or InvalidArgument naming the part that
// is wrong.
Result<Filter> CheckFilter(const Filter& in) {
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

bool Matches(const Filter& f, const Facts& x) {
  return (f.applicant_id.empty() || x.applicant == f.applicant_id) &&
         (f.programme.empty() || x.programme == f.programme) &&
         (f.level.empty() || x.level == f.level) && (f.source.empty() || x.source == f.source) &&
         x.amount_fen >= f.min_fen && x.amount_fen <= f.max_fen && x.when_ms >= f.period.from_ms &&
         x.when_ms < f.period.to_ms;
}

// The level of a programme in the catalogue (DISTRICT, MUNICIPAL), "" when unknown.
std::string LevelOf(const std::shared_ptr<const CatalogIndex>& catalog,
                    std::string_view programme) {
  const v1::Programme* p = catalog ? catalog->Find(programme) : nullptr;
  return p ? LevelName(p->level()) : "";
}

// Walks table approvals: `visit` gets each key (partition u32 BE || approval id) and state.
Status WalkApprovals(
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
json StateRow(int64_t when_ms, const std::string& applicant, const char* id_column,
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

// An approval's stored state, or DataLoss.
Result<ledger::v1::ApprovalState> ApprovalAt(const lmdb::Txn& txn, const Tables& t, uint32_t p,
                                             std::string_view id) {
  ledger::v1::ApprovalState st;
  auto v = txn.Get(t.approvals, PartitionKey(p, id));
  if (!v) return Fail(v.error());
  if (*v && !st.ParseFromArray((**v).data(), static_cast<int>((**v).size()))) {
    return Fail(Error::DataLoss(fmt::format("approval {} state does not parse", id)));
  }
  return st;
}

Result<ledger::v1::ApplicationState> ApplicationAt(const lmdb::Txn& txn, const Tables& t,
                                                   uint32_t p, std::string_view id) {
  ledger::v1::ApplicationState st;
  auto v = txn.Get(t.applications, PartitionKey(p, id));
  if (!v) return Fail(v.error());
  if (*v && !st.ParseFromArray((**v).data(), static_cast<int>((**v).size()))) {
    return Fail(Error::DataLoss(fmt::format("application {} state does not parse", id)));
  }
  return st;
}

// Opens a read transaction and starts an answer with the position it reads at.
struct Snapshot {
  lmdb::Txn txn;
  QueryResult out;
};
Result<Snapshot> Begin(const Ledger& ledger, std::string title) {
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
Result<std::unique_ptr<Listing>> BeginListing(const Ledger& ledger, std::string title,
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
        auto app = ApplicationAt(txn, t, part, st.application_event_id());
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
                         e.occurred_at_ms()})) {
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
    out.rows.push_back({{"programme", key.first},
                        {"level", p ? LevelName(p->level()) : ""},
                        {"year", key.second == 0 ? json(nullptr) : json(key.second)},
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
                        {"over_ratio_approvals", over},
                        {"over_cap", (cap > 0 && s.largest_approval_fen() > cap) || over > 0}});
    all.set_applications(all.applications() + s.applications());
    all.set_approvals(all.approvals() + s.approvals());
    all.set_approved_fen(all.approved_fen() + s.approved_fen());
    all.set_payments(all.payments() + s.payments());
    all.set_paid_fen(all.paid_fen() + s.paid_fen());
    all.set_clawbacks(all.clawbacks() + s.clawbacks());
    all.set_clawed_back_fen(all.clawed_back_fen() + s.clawed_back_fen());
    all.set_rejected(all.rejected() + s.rejected());
  }
  if (!programme.empty() && out.rows.empty() && !*catalog) {
    return Fail(Error::NotFound(fmt::format("programme {} has no entry", programme)));
  }
  out.summary = json::array({{{"programme", "total"},
                              {"applications", all.applications()},
                              {"approvals", all.approvals()},
                              {"approved_fen", all.approved_fen()},
                              {"payments", all.payments()},
                              {"paid_fen", all.paid_fen()},
                              {"clawbacks", all.clawbacks()},
                              {"clawed_back_fen", all.clawed_back_fen()},
                              {"net_paid_fen", all.paid_fen() - all.clawed_back_fen()},
                              {"rejected", all.rejected()}}});
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
                     EventAmount(e), e.occurred_at_ms()})) {
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
        auto w = ApprovalAt(txn, t, p, st.superseded_by());
        if (!w) return Fail(w.error());
        offer('a', k,
              json{{"decision", "superseded"},
                   {"applicant_id", st.applicant_id()},
                   {"approval_event_id", std::string(k.substr(4))},
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
  G60_TRY(WalkEntries(txn, t, begin, PrefixEnd(begin),
                      [&](std::string_view k, const Read& r) -> Result<bool> {
                        ++duplicates;
                        const auto& b = r.entry.body;
                        std::string winner;
                        for (const auto& e : b.effects()) {
                          if (e.rfind(kDuplicateOfNote, 0) == 0)
                            winner = e.substr(kDuplicateOfNote.size());
                        }
                        ledger::v1::ApprovalState w;
                        if (!winner.empty()) {
                          auto ws = ApprovalAt(txn, t, r.entry.header.partition, winner);
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
                                {"approval_event_id", std::string(k.substr(4))},
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
              txn.Get(t.payments, PartitionKey(r.entry.header.partition, c.payment_event_ids(0)));
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

// The catalogue in force in one partition (null before its first publication).
Result<std::shared_ptr<const CatalogIndex>> CatalogOf(const Ledger& ledger, const lmdb::Txn& txn,
                                                      uint32_t partition) {
  const Tables& t = ledger.tables();
  auto hash = txn.Get(t.catalogs, PartitionKey(partition, ""));
  if (!hash) return Fail(hash.error());
  if (!*hash || (**hash).size() != 32) return std::shared_ptr<const CatalogIndex>();
  auto blob = txn.Get(t.catalog_blobs, **hash);
  if (!blob) return Fail(blob.error());
  if (!*blob) return Fail(Error::DataLoss("the catalogue in force is not stored"));
  Hash h;
  std::copy((**hash).begin(), (**hash).end(), h.begin());
  return ledger.catalogs().Get(h, **blob);
}

// The catalogues in force per partition, read once each.
class CatalogsByPartition {
 public:
  CatalogsByPartition(const Ledger& ledger, const lmdb::Txn& txn) : ledger_(ledger), txn_(txn) {}
  Result<std::shared_ptr<const CatalogIndex>> Get(uint32_t partition) {
    auto it = cache_.find(partition);
    if (it != cache_.end()) return it->second;
    auto c = CatalogOf(ledger_, txn_, partition);
    if (!c) return Fail(c.error());
    cache_[partition] = *c;
    return *c;
  }

 private:
  const Ledger& ledger_;
  const lmdb::Txn& txn_;
  std::map<uint32_t, std::shared_ptr<const CatalogIndex>> cache_;
};

std::vector<std::string_view> SplitNul(std::string_view key) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t nul = key.find('\0', start);
    parts.push_back(key.substr(start, nul == key.npos ? key.npos : nul - start));
    if (nul == key.npos) return parts;
    start = nul + 1;
  }
}

const v1::OverlapGroup* GroupById(const CatalogIndex& c, std::string_view id) {
  for (const auto& g : c.catalog.overlap_groups())
    if (g.id() == id) return &g;
  return nullptr;
}

// used / cap in basis points, rounded down (cap > 0).
int64_t UsedBp(int64_t used, int64_t cap) {
  return static_cast<int64_t>(static_cast<__int128>(used) * 10000 / cap);
}

// A row about one record of the policy table (key without its partition): the running sum
// behind a yearly, window or co-funding cap, or a once-only reward used, against the cap
// of `catalog`. nullopt for records that are no cap (overlap winners) or whose programme
// or group the catalogue does not have.
std::optional<json> CapRow(std::string_view key, const ledger::v1::PolicyRecord& rec,
                           const CatalogIndex& catalog) {
  auto parts = SplitNul(key);
  if (parts.size() < 3) return std::nullopt;
  std::string_view kind = parts[0];
  json row{{"applicant_id", std::string(parts[2])},
           {"scope", std::string(parts[1])},
           {"approval_event_id", rec.approval_event_id()}};
  int64_t cap = 0;
  if (kind == "year" && parts.size() == 4) {
    const v1::Programme* p = catalog.Find(parts[1]);
    if (!p) return std::nullopt;
    row["cap"] = "yearly";
    row["period"] = std::string(parts[3]);
    cap = p->yearly_cap_fen();
  } else if (kind == "window" && parts.size() == 4) {
    const v1::Programme* p = catalog.Find(parts[1]);
    if (!p || p->window_years() == 0) return std::nullopt;
    int w = std::atoi(std::string(parts[3]).c_str());
    int first = CstYear(catalog.valid_from_ms) + w * static_cast<int>(p->window_years());
    row["cap"] = "window";
    row["period"] = fmt::format("{}-{}", first, first + static_cast<int>(p->window_years()) - 1);
    cap = p->window_cap_fen();
  } else if (kind == "cofund" && parts.size() == 4) {
    const v1::OverlapGroup* g = GroupById(catalog, parts[1]);
    if (!g) return std::nullopt;
    auto limit = ApplyRatio(rec.base_fen(), g->ratio_bp());
    cap = std::min(limit ? *limit : INT64_MAX, g->cap_fen() > 0 ? g->cap_fen() : INT64_MAX);
    row["cap"] = "co-funding";
    row["period"] = "project " + std::string(parts[3]);
  } else if (kind == "once") {
    row["cap"] = "once-only";
    row["period"] = "";
    row["used_fen"] = nullptr;
    row["cap_fen"] = nullptr;
    row["headroom_fen"] = nullptr;
    row["used_bp"] = 10000;
    return row;
  } else {
    return std::nullopt;
  }
  row["used_fen"] = rec.sum_fen();
  row["cap_fen"] = cap;
  row["headroom_fen"] = cap - rec.sum_fen();
  row["used_bp"] = cap > 0 ? json(UsedBp(rec.sum_fen(), cap)) : json(nullptr);
  return row;
}

const std::vector<std::string> kCapColumns = {"applicant_id", "cap",      "scope",
                                              "period",       "used_fen", "cap_fen",
                                              "headroom_fen", "used_bp",  "approval_event_id"};

Status CheckApplicantId(std::string_view id) {
  if (ValidEventId(id)) return {};
  return Fail(Error::InvalidArgument(
      fmt::format("'{}' is not an applicant id (1..128 printable characters)", id)));
}

// The partition of an applicant's chain: where its first entry is; NotFound without one.
Result<uint32_t> PartitionOfApplicant(const lmdb::Txn& txn, const Tables& t,
                                      std::string_view applicant_id) {
  std::string begin = IndexBegin(IndexKind::kApplicant, IndexTerm(applicant_id));
  std::optional<uint32_t> found;
  G60_TRY(Walk(txn, t.index, begin, PrefixEnd(begin),
               [&](std::string_view k, std::string_view) -> Result<bool> {
                 if (!found) found = PositionOfIndexKey(k).partition;
                 return true;
               }));
  if (!found) {
    return Fail(
        Error::NotFound(fmt::format("applicant {} has no entry in the ledger", applicant_id)));
  }
  return *found;
}

}  // namespace

Result<std::string> CatalogueVersionAt(const lmdb::Txn& txn, const Tables& tables,
                                       uint32_t partition, uint64_t sequence) {
  auto v = txn.Get(tables.entries, EntryKey(partition, sequence));
  if (!v) return Fail(v.error());
  if (!*v) return std::string();
  auto e = DecodeEntry(**v);
  if (!e) return Fail(e.error());
  if (e->body.catalog_hash().empty()) return std::string();
  auto blob = txn.Get(tables.catalog_blobs, e->body.catalog_hash());
  if (!blob) return Fail(blob.error());
  v1::Catalog c;
  if (!*blob || !c.ParseFromArray((**blob).data(), static_cast<int>((**blob).size()))) {
    return Fail(Error::DataLoss(
        fmt::format("the catalogue of entry {}/{} is not stored whole", partition, sequence)));
  }
  return c.version();
}

Result<QueryResult> Queries::Totals(std::string_view applicant_id) const {
  G60_TRY(CheckApplicantId(applicant_id));
  auto snap = Begin(ledger_, fmt::format("money of applicant {} per year (CST)", applicant_id));
  if (!snap) return Fail(snap.error());
  const lmdb::Txn& txn = snap->txn;
  QueryResult& out = snap->out;
  const Tables& t = ledger_.tables();
  out.columns = {"year",     "approvals",       "approved_fen", "entitlement_fen",
                 "paid_fen", "clawed_back_fen", "net_paid_fen"};
  struct Year {
    uint64_t approvals = 0;
    int64_t approved = 0, entitlement = 0, paid = 0, clawed_back = 0;
  };
  std::map<int, Year> years;
  bool any = false;
  std::string begin = IndexBegin(IndexKind::kApplicant, IndexTerm(applicant_id));
  G60_TRY(WalkEntries(
      txn, t, begin, PrefixEnd(begin), [&](std::string_view, const Read& r) -> Result<bool> {
        any = true;
        const auto& b = r.entry.body;
        if (b.verdict() != ledger::v1::VERDICT_ACCEPTED) return false;
        Year& y = years[CstYear(r.msg.event.occurred_at_ms())];
        if (b.event_type() == EventType::EVENT_TYPE_APPROVAL) {
          auto st = ApprovalAt(txn, t, r.entry.header.partition, b.event_id());
          if (!st) return Fail(st.error());
          ++y.approvals;
          y.approved += b.amount_fen();
          // A superseded approval is entitled to what it paid (carried into its winner); a
          // live one to its approved amount less what it took over from those it superseded.
          y.entitlement += st->superseded_by().empty() ? st->approved_fen() - st->carried_over_fen()
                                                       : st->paid_fen() - st->clawed_back_fen();
        } else if (b.event_type() == EventType::EVENT_TYPE_STAGE_PAYMENT) {
          y.paid += b.amount_fen();
        } else if (b.event_type() == EventType::EVENT_TYPE_CLAWBACK) {
          y.clawed_back += b.amount_fen();
        }
        return true;
      }));
  if (!any) {
    return Fail(
        Error::NotFound(fmt::format("applicant {} has no entry in the ledger", applicant_id)));
  }
  Year all;
  for (const auto& [year, y] : years) {
    if (y.approvals == 0 && y.paid == 0 && y.clawed_back == 0) continue;
    out.rows.push_back({{"year", year},
                        {"approvals", y.approvals},
                        {"approved_fen", y.approved},
                        {"entitlement_fen", y.entitlement},
                        {"paid_fen", y.paid},
                        {"clawed_back_fen", y.clawed_back},
                        {"net_paid_fen", y.paid - y.clawed_back}});
    all.approvals += y.approvals;
    all.approved += y.approved;
    all.entitlement += y.entitlement;
    all.paid += y.paid;
    all.clawed_back += y.clawed_back;
  }
  out.summary = json::array({{{"year", "total"},
                              {"approvals", all.approvals},
                              {"approved_fen", all.approved},
                              {"entitlement_fen", all.entitlement},
                              {"paid_fen", all.paid},
                              {"clawed_back_fen", all.clawed_back},
                              {"net_paid_fen", all.paid - all.clawed_back}}});
  return std::move(out);
}

Result<QueryResult> Queries::Headroom(std::string_view applicant_id) const {
  G60_TRY(CheckApplicantId(applicant_id));
  auto snap =
      Begin(ledger_, fmt::format("caps of applicant {} and the headroom left", applicant_id));
  if (!snap) return Fail(snap.error());
  const lmdb::Txn& txn = snap->txn;
  QueryResult& out = snap->out;
  const Tables& t = ledger_.tables();
  auto partition = PartitionOfApplicant(txn, t, applicant_id);
  if (!partition) return Fail(partition.error());
  auto catalog = CatalogOf(ledger_, txn, *partition);
  if (!catalog) return Fail(catalog.error());
  out.columns = kCapColumns;
  std::string begin = PartitionKey(*partition, "");
  if (*catalog) {
    G60_TRY(Walk(txn, t.policy, begin, PrefixEnd(begin),
                 [&](std::string_view k, std::string_view v) -> Result<bool> {
                   auto parts = SplitNul(k.substr(4));
                   if (parts.size() < 3 || parts[2] != applicant_id) return false;
                   ledger::v1::PolicyRecord rec;
                   if (!rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
                     return Fail(Error::DataLoss("a policy record does not parse"));
                   }
                   auto row = CapRow(k.substr(4), rec, **catalog);
                   if (row) out.rows.push_back(std::move(*row));
                   return true;
                 }));
  }
  return std::move(out);
}

Result<QueryResult> Queries::NearCaps(int within_pct, const Page& page) const {
  if (within_pct < 0 || within_pct > 100) {
    return Fail(Error::InvalidArgument("within must be a percentage from 0 to 100"));
  }
  auto listing = BeginListing(ledger_, fmt::format("applicants within {}% of a cap", within_pct),
                              page, Filter{});
  if (!listing) return Fail(listing.error());
  auto& [unused_filter, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = kCapColumns;
  out.columns.push_back("partition");
  CatalogsByPartition catalogs(ledger_, txn);
  std::map<std::string, uint64_t> counts;
  G60_TRY(Walk(txn, t.policy, "", "", [&](std::string_view k, std::string_view v) -> Result<bool> {
    uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
    auto catalog = catalogs.Get(p);
    if (!catalog) return Fail(catalog.error());
    if (!*catalog) return false;
    ledger::v1::PolicyRecord rec;
    if (!rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
      return Fail(Error::DataLoss("a policy record does not parse"));
    }
    auto row = CapRow(k.substr(4), rec, **catalog);
    if (!row || !(*row)["cap_fen"].is_number()) return false;
    int64_t cap = (*row)["cap_fen"], headroom = (*row)["headroom_fen"];
    if (cap <= 0 ||
        static_cast<__int128>(headroom) * 100 > static_cast<__int128>(cap) * within_pct) {
      return false;
    }
    (*row)["partition"] = p;
    ++counts[(*row)["cap"].get<std::string>()];
    return pager.Offer(k, std::move(*row));
  }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [cap, n] : counts)
    out.summary.push_back({{"cap", cap}, {"records", n}});
  return std::move(out);
}

Result<QueryResult> Queries::Pending(const Filter& filter, const Page& page) const {
  auto listing = BeginListing(ledger_, "applications without an approval", page, filter);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = {"occurred_at", "applicant_id",  "application_event_id", "programme", "level",
                 "project_id",  "requested_fen", "declared_base_fen",    "partition", "sequence"};
  CatalogsByPartition catalogs(ledger_, txn);
  PerProgramme by_programme;
  G60_TRY(Walk(
      txn, t.applications, "", "", [&](std::string_view k, std::string_view v) -> Result<bool> {
        ledger::v1::ApplicationState st;
        if (!st.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
          return Fail(Error::DataLoss("an application state does not parse"));
        }
        if (!st.approval_event_id().empty()) return false;
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto catalog = catalogs.Get(p);
        if (!catalog) return Fail(catalog.error());
        std::string level = LevelOf(*catalog, st.programme());
        if (!Matches(f, {st.applicant_id(), st.programme(), level, "", st.requested_fen(),
                         st.occurred_at_ms()})) {
          return false;
        }
        by_programme.Add(st.programme(), st.requested_fen());
        json row = StateRow(st.occurred_at_ms(), st.applicant_id(), "application_event_id",
                            k.substr(4), st.programme(), level, st.project_id(), p, st.seq());
        row["requested_fen"] = st.requested_fen();
        row["declared_base_fen"] = st.declared_base_fen();
        return pager.Offer(k, std::move(row));
      }));
  pager.Finish();
  out.summary = by_programme.Summary("applications", "requested_fen");
  return std::move(out);
}

Result<QueryResult> Queries::Unpaid(const Filter& filter, const Page& page) const {
  auto listing = BeginListing(ledger_, "live approvals never paid", page, filter);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = {"occurred_at", "applicant_id", "approval_event_id", "programme",
                 "level",       "project_id",   "approved_fen",      "carried_over_fen",
                 "stages",      "partition",    "sequence"};
  PerProgramme by_programme;
  G60_TRY(WalkApprovals(
      txn, t, [&](std::string_view k, const ledger::v1::ApprovalState& st) -> Result<bool> {
        if (!st.superseded_by().empty() || st.paid_fen() != 0) return false;
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto r = ReadAt(txn, t, IndexPosition{p, st.seq()});
        if (!r) return Fail(r.error());
        std::string level = LevelName(st.level());
        int64_t when = r->msg.event.occurred_at_ms();
        if (!Matches(f, {st.applicant_id(), st.programme(), level, "", st.approved_fen(), when})) {
          return false;
        }
        by_programme.Add(st.programme(), st.approved_fen());
        json row = StateRow(when, st.applicant_id(), "approval_event_id", k.substr(4),
                            st.programme(), level, st.project_id(), p, st.seq());
        row["approved_fen"] = st.approved_fen();
        row["carried_over_fen"] = st.carried_over_fen();
        row["stages"] = st.stages_size();
        return pager.Offer(k, std::move(row));
      }));
  pager.Finish();
  out.summary = by_programme.Summary("approvals", "approved_fen");
  return std::move(out);
}

Result<QueryResult> Queries::Decisions(std::string_view key_id, const Filter& filter,
                                       const Page& page) const {
  if (!key_id.empty() && !ValidEventId(key_id)) {
    return Fail(Error::InvalidArgument(fmt::format("key '{}' is not a key id", key_id)));
  }
  auto listing =
      BeginListing(ledger_,
                   key_id.empty() ? std::string("approval decisions by signing key")
                                  : fmt::format("approval decisions signed by {}", key_id),
                   page, filter);
  if (!listing) return Fail(listing.error());
  auto& [f, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  auto catalog = CurrentCatalog(ledger_, txn);
  if (!catalog) return Fail(catalog.error());
  auto versions = CatalogueVersions(txn, t);
  if (!versions) return Fail(versions.error());
  out.columns = kEntryColumns;
  out.columns.push_back("key_id");
  struct Count {
    uint64_t accepted = 0, rejected = 0;
    int64_t approved = 0;
  };
  std::map<std::string, Count> by_key;
  std::string begin = IndexBegin(IndexKind::kType,
                                 std::string(1, static_cast<char>(EventType::EVENT_TYPE_APPROVAL)));
  G60_TRY(WalkEntries(
      txn, t, begin, PrefixEnd(begin), [&](std::string_view k, const Read& r) -> Result<bool> {
        const auto& b = r.entry.body;
        if (!key_id.empty() && b.key_id() != key_id) return false;
        const auto& e = r.msg.event;
        if (!Matches(f, {b.applicant_id(), b.programme(), LevelOf(*catalog, b.programme()), "",
                         EventAmount(e), e.occurred_at_ms()})) {
          return false;
        }
        Count& c = by_key[b.key_id()];
        if (b.verdict() == ledger::v1::VERDICT_ACCEPTED) {
          ++c.accepted;
          c.approved += b.amount_fen();
        } else {
          ++c.rejected;
        }
        json row = EntryRow(r, *versions);
        row["key_id"] = b.key_id();
        return pager.Offer(k, std::move(row));
      }));
  pager.Finish();
  out.summary = json::array();
  for (const auto& [key, c] : by_key) {
    out.summary.push_back({{"key_id", key},
                           {"accepted", c.accepted},
                           {"rejected", c.rejected},
                           {"approved_fen", c.approved}});
  }
  return std::move(out);
}

Result<QueryResult> Queries::Catalogues() const {
  auto snap = Begin(ledger_, "catalogues published");
  if (!snap) return Fail(snap.error());
  const lmdb::Txn& txn = snap->txn;
  QueryResult& out = snap->out;
  const Tables& t = ledger_.tables();
  out.columns = {
      "version",      "hash",     "effective_from",       "validity_years",     "valid_until",
      "published_at", "event_id", "partitions_published", "partitions_in_force"};
  struct Seen {
    json row;
    uint64_t published = 0, in_force = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, Seen> by_hash;
  std::string begin = IndexBegin(
      IndexKind::kType, std::string(1, static_cast<char>(EventType::EVENT_TYPE_CATALOG_PUBLISHED)));
  G60_TRY(WalkEntries(
      txn, t, begin, PrefixEnd(begin), [&](std::string_view, const Read& r) -> Result<bool> {
        if (r.entry.body.verdict() != ledger::v1::VERDICT_ACCEPTED) return false;
        const std::string& bytes = r.msg.event.catalog_published().catalog();
        std::string hash(AsBytes(Sha256(bytes)));
        auto [it, added] = by_hash.try_emplace(hash);
        ++it->second.published;
        if (!added) return true;
        order.push_back(hash);
        auto index = IndexCatalog(bytes);
        if (!index) return Fail(index.error());
        const auto& c = (*index)->catalog;
        it->second.row = {{"version", c.version()},
                          {"hash", HexEncode(hash)},
                          {"effective_from", c.effective_from()},
                          {"validity_years", c.validity_years()},
                          {"valid_until", FormatCst((*index)->valid_until_ms)},
                          {"published_at",
                           fmt::format("{}/{}", r.entry.header.partition, r.entry.header.sequence)},
                          {"event_id", r.entry.body.event_id()}};
        return true;
      }));
  G60_TRY(Walk(txn, t.catalogs, "", "", [&](std::string_view, std::string_view v) -> Result<bool> {
    auto it = by_hash.find(std::string(v));
    if (it != by_hash.end()) ++it->second.in_force;
    return true;
  }));
  for (const auto& h : order) {
    Seen& s = by_hash[h];
    s.row["partitions_published"] = s.published;
    s.row["partitions_in_force"] = s.in_force;
    out.rows.push_back(std::move(s.row));
  }
  return std::move(out);
}

namespace {

// An accepted approval as double funding looks at it.
struct Funded {
  std::string approval, programme, project, application;
  int64_t approved_fen = 0, applied_ms = 0;
  uint64_t approval_seq = 0, application_seq = 0;
};

// Applications at most this far apart are "close in dates": 90 days, a quarter. The events
// carry no project period, so the applications' dates stand for when the projects ran.
constexpr int64_t kCloseDatesMs = int64_t{90} * 24 * 3600 * 1000;
// Amounts whose difference is at most this share of the larger are "similar": 5%.
constexpr int64_t kSimilarBp = 500;

std::optional<json> DoubleFundingRow(std::string_view applicant, std::string_view group,
                                     uint32_t partition, const Funded& a, const Funded& b) {
  if (a.project == b.project) return std::nullopt;  // the rules decide the same project
  int64_t apart_ms =
      a.applied_ms > b.applied_ms ? a.applied_ms - b.applied_ms : b.applied_ms - a.applied_ms;
  int64_t larger = std::max(a.approved_fen, b.approved_fen);
  int64_t diff = a.approved_fen > b.approved_fen ? a.approved_fen - b.approved_fen
                                                 : b.approved_fen - a.approved_fen;
  int64_t diff_bp = larger > 0 ? UsedBp(diff, larger) : 0;
  bool close = apart_ms <= kCloseDatesMs;
  bool similar = static_cast<__int128>(diff) * 10000 <= static_cast<__int128>(larger) * kSimilarBp;
  if (!close && !similar) return std::nullopt;
  std::string why;
  if (close) why = fmt::format("applications {} days apart", apart_ms / (24 * 3600 * 1000));
  if (similar) {
    why += fmt::format("{}amounts differ by {}.{:02d}%", why.empty() ? "" : "; ", diff_bp / 100,
                       diff_bp % 100);
  }
  auto entry = [&](uint64_t seq, const std::string& id) {
    return json{{"partition", partition}, {"sequence", seq}, {"event_id", id}};
  };
  return json{
      {"applicant_id", std::string(applicant)},
      {"group", std::string(group)},
      {"approval_a", a.approval},
      {"programme_a", a.programme},
      {"project_a", a.project},
      {"approved_a_fen", a.approved_fen},
      {"applied_a", FormatCst(a.applied_ms)},
      {"approval_b", b.approval},
      {"programme_b", b.programme},
      {"project_b", b.project},
      {"approved_b_fen", b.approved_fen},
      {"applied_b", FormatCst(b.applied_ms)},
      {"days_apart", apart_ms / (24 * 3600 * 1000)},
      {"difference_bp", diff_bp},
      {"why", why},
      {"entries",
       json::array({entry(a.application_seq, a.application), entry(a.approval_seq, a.approval),
                    entry(b.application_seq, b.application), entry(b.approval_seq, b.approval)})}};
}

}  // namespace

Result<QueryResult> Queries::DoubleFunding(const Page& page) const {
  auto listing =
      BeginListing(ledger_, "possible double funding, for review (never rejected)", page, Filter{});
  if (!listing) return Fail(listing.error());
  auto& [unused_filter, txn, out, pager] = **listing;
  const Tables& t = ledger_.tables();
  out.columns = {"applicant_id",   "group",     "approval_a", "programme_a",   "project_a",
                 "approved_a_fen", "applied_a", "approval_b", "programme_b",   "project_b",
                 "approved_b_fen", "applied_b", "days_apart", "difference_bp", "why",
                 "entries"};
  CatalogsByPartition catalogs(ledger_, txn);
  // (partition u32 BE || applicant NUL group) -> its approvals.
  std::map<std::string, std::vector<Funded>> groups;
  G60_TRY(WalkApprovals(
      txn, t, [&](std::string_view k, const ledger::v1::ApprovalState& st) -> Result<bool> {
        uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(k.data()));
        auto catalog = catalogs.Get(p);
        if (!catalog) return Fail(catalog.error());
        const v1::OverlapGroup* g = *catalog ? (*catalog)->GroupOf(st.programme()) : nullptr;
        if (!g) return false;
        auto app = ApplicationAt(txn, t, p, st.application_event_id());
        if (!app) return Fail(app.error());
        std::string key = PartitionKey(p, st.applicant_id());
        key.push_back('\0');
        key += g->id();
        groups[key].push_back(Funded{std::string(k.substr(4)), st.programme(), st.project_id(),
                                     st.application_event_id(), st.approved_fen(),
                                     app->occurred_at_ms(), st.seq(), app->seq()});
        return true;
      }));
  uint64_t flags = 0;
  for (const auto& [key, list] : groups) {
    uint32_t p = GetU32BE(reinterpret_cast<const unsigned char*>(key.data()));
    auto parts = SplitNul(std::string_view(key).substr(4));
    for (size_t i = 0; i < list.size(); ++i) {
      for (size_t j = i + 1; j < list.size(); ++j) {
        auto row = DoubleFundingRow(parts[0], parts[1], p, list[i], list[j]);
        if (!row) continue;
        ++flags;
        pager.Offer(key + '\0' + list[i].approval + '\0' + list[j].approval, std::move(*row));
      }
    }
  }
  pager.Finish();
  out.summary = json::array({{{"flags", flags},
                              {"close_dates_days", kCloseDatesMs / (24 * 3600 * 1000)},
                              {"similar_amounts_bp", kSimilarBp}}});
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
    // The group's name first (programme, source, level, reason, decision), then figures.
    std::vector<std::string> cols;
    for (auto& [k, v] : r.summary[0].items())
      if (v.is_string()) cols.push_back(k);
    for (auto& [k, v] : r.summary[0].items())
      if (!v.is_string()) cols.push_back(k);
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
