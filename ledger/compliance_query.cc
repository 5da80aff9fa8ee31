// The questions of issue 14 beside the original queries (docs/queries.md): an
// applicant's money per year and headroom against its caps, who is near a cap, pending
// applications, approvals never paid, decisions by key, the catalogues published, and
// possible double funding for review.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "ledger/catalog.h"
#include "ledger/crypto.h"
#include "ledger/query.h"
#include "ledger/query_internal.h"
#include "ledger/rules.h"

namespace g60 {

using nlohmann::json;
using namespace query_internal;

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

Result<json> LinkCatalogues(const Ledger& ledger, const json& bundle) {
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Fail(txn.error());
  json out = json::array();
  for (const auto& l : bundle["links"]) {
    auto v = CatalogueVersionAt(*txn, ledger.tables(), l["partition"].get<uint32_t>(),
                                l["sequence"].get<uint64_t>());
    if (!v) return Fail(v.error());
    out.push_back({{"partition", l["partition"]},
                   {"sequence", l["sequence"]},
                   {"event_id", l["event_id"]},
                   {"catalog", *v}});
  }
  return out;
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
  G60_TRY(WalkEntries(txn, t, begin, PrefixEnd(begin),
                      [&](std::string_view, const Read& r) -> Result<bool> {
                        any = true;
                        const auto& b = r.entry.body;
                        if (b.verdict() != ledger::v1::VERDICT_ACCEPTED) return false;
                        Year& y = years[CstYear(r.msg.event.occurred_at_ms())];
                        if (b.event_type() == EventType::EVENT_TYPE_APPROVAL) {
                          auto st = ApprovalAt(txn, t, r.entry.header.partition,
                                               r.msg.event.applicant_id(), r.msg.event.event_id());
                          if (!st) return Fail(st.error());
                          ++y.approvals;
                          y.approved += b.amount_fen();
                          // A live approval adds its approved amount less what it took over from
                          // those it superseded; a superseded one what its successor took over from
                          // it (the successor's carried_over_fen less its own), fixed when it was
                          // superseded, so that a later clawback (recorded along the whole chain)
                          // never counts twice. Along A -> B -> C the contributions add up to C's
                          // approved amount.
                          if (st->superseded_by().empty()) {
                            y.entitlement += st->approved_fen() - st->carried_over_fen();
                          } else {
                            auto next = ApprovalAt(txn, t, r.entry.header.partition,
                                                   r.msg.event.applicant_id(), st->superseded_by());
                            if (!next) return Fail(next.error());
                            y.entitlement += next->carried_over_fen() - st->carried_over_fen();
                          }
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
  if (!*catalog) return std::move(out);
  // The records of the applicant's caps (key without its partition), as the rules keep them.
  std::map<std::string, ledger::v1::PolicyRecord> records;
  std::string begin = PartitionKey(*partition, "");
  G60_TRY(Walk(txn, t.policy, begin, PrefixEnd(begin),
               [&](std::string_view k, std::string_view v) -> Result<bool> {
                 auto parts = SplitNul(k.substr(4));
                 if (parts.size() < 3 || parts[2] != applicant_id) return false;
                 ledger::v1::PolicyRecord& rec = records[std::string(k.substr(4))];
                 if (!rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
                   return Fail(Error::DataLoss("a policy record does not parse"));
                 }
                 return true;
               }));
  // Caps the applicant's accepted applications fall under with nothing approved yet: all
  // their headroom is left (a co-funding cap then on the smallest base declared).
  std::map<std::string, ledger::v1::PolicyRecord> unused;
  std::string term = IndexBegin(IndexKind::kApplicant, IndexTerm(applicant_id));
  G60_TRY(WalkEntries(
      txn, t, term, PrefixEnd(term), [&](std::string_view, const Read& r) -> Result<bool> {
        const auto& e = r.msg.event;
        if (!e.has_application() || r.entry.body.verdict() != ledger::v1::VERDICT_ACCEPTED) {
          return false;
        }
        const v1::Programme* p = (*catalog)->Find(e.programme());
        if (!p) return false;
        int year = CstYear(e.occurred_at_ms());
        std::vector<std::string> keys;
        if (p->kind() == v1::PROGRAMME_KIND_YEARLY_OPERATING) {
          keys.push_back(PolicyKey({"year", p->id(), applicant_id, std::to_string(year)}));
        } else if (p->kind() == v1::PROGRAMME_KIND_CUMULATIVE && p->window_years() > 0) {
          int w = (year - CstYear((*catalog)->valid_from_ms)) / static_cast<int>(p->window_years());
          keys.push_back(PolicyKey({"window", p->id(), applicant_id, std::to_string(w)}));
        }
        const v1::OverlapGroup* g = (*catalog)->GroupOf(p->id());
        std::string cofund;
        if (g && g->mode() == v1::OverlapGroup::MODE_CO_FUNDED) {
          cofund = PolicyKey({"cofund", g->id(), applicant_id, e.project_id()});
          keys.push_back(cofund);
        }
        for (const auto& key : keys) {
          if (records.count(key)) continue;
          auto [it, added] = unused.try_emplace(key);
          int64_t base = e.application().declared_base_fen();
          if (key == cofund)
            it->second.set_base_fen(added ? base : std::min(base, it->second.base_fen()));
        }
        return true;
      }));
  records.merge(unused);
  for (const auto& [key, rec] : records) {
    auto row = CapRow(key, rec, **catalog);
    if (row) out.rows.push_back(std::move(*row));
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
        json row =
            StateRow(st.occurred_at_ms(), st.applicant_id(), "application_event_id",
                     EventKeyId(k.substr(4)), st.programme(), level, st.project_id(), p, st.seq());
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
        json row = StateRow(when, st.applicant_id(), "approval_event_id", EventKeyId(k.substr(4)),
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
    std::set<uint32_t> published;  // partitions it was published in (once or more)
    uint64_t in_force = 0;
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
        it->second.published.insert(r.entry.header.partition);
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
    s.row["partitions_published"] = s.published.size();
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
  std::string superseded_by;  // the approval that superseded it (就高), if any
  bool once = false;          // a once-per-applicant reward: judged per enterprise
};

// Applications at most this far apart are "close in dates": 90 days, a quarter. The events
// carry no project period, so the applications' dates stand for when the projects ran.
constexpr int64_t kCloseDatesMs = int64_t{90} * 24 * 3600 * 1000;
// Amounts whose difference is at most this share of the larger are "similar": 5%.
constexpr int64_t kSimilarBp = 500;

std::optional<json> DoubleFundingRow(std::string_view applicant, std::string_view group,
                                     uint32_t partition, const Funded& a, const Funded& b) {
  // What the rules decide is not a question for review: the same project, a supersession,
  // and once-only rewards, which 不重复 judges per enterprise whatever the project ids.
  if (a.project == b.project) return std::nullopt;
  if (a.superseded_by == b.approval || b.superseded_by == a.approval) return std::nullopt;
  if (a.once || b.once) return std::nullopt;
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
        auto app = ApplicationAt(txn, t, p, st.applicant_id(), st.application_event_id());
        if (!app) return Fail(app.error());
        std::string key = PartitionKey(p, st.applicant_id());
        key.push_back('\0');
        key += g->id();
        const v1::Programme* prog = (*catalog)->Find(st.programme());
        groups[key].push_back(Funded{std::string(EventKeyId(k.substr(4))), st.programme(),
                                     st.project_id(), st.application_event_id(), st.approved_fen(),
                                     app->occurred_at_ms(), st.seq(), app->seq(),
                                     st.superseded_by(), prog && prog->once_per_applicant()});
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

}  // namespace g60
