// Compliance queries, answered from the ledger's indexes, totals and policy table
// (docs/queries.md): an applicant's history and money per year, headroom against caps and
// who is near one, programme utilisation against caps per year, payments and rejections
// filtered, pending applications, approvals never paid, decisions by key, the catalogues
// published, overlap decisions (从优、就高、不重复), possible double funding, outstanding
// stages, clawbacks. ledger/query.cc holds the first queries, ledger/compliance_query.cc
// those of issue 14; ledger/query_internal.h what they share. Each runs in one LMDB read
// transaction, a consistent snapshot, so it can run in any process while ingest writes, and sees
// every batch committed before it began.
//
// Every answer is a table: named columns and rows (JSON objects keyed by column), an
// optional summary, a page token, and the ledger position it was computed at. A query that pages
// returns at most `limit` rows and, when more may follow, `next`: pass it as `after` to continue.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ledger/store.h"

namespace g60 {

struct QueryResult {
  std::string title;
  std::vector<std::string> columns;
  std::vector<nlohmann::json> rows;
  nlohmann::json summary;  // null, or an array of summary rows (e.g. totals by group)
  std::string next;        // page token; empty on the last page
  // The ledger position the answer was computed at (LedgerPosition): null for answers
  // that read no ledger.
  nlohmann::json position;
  nlohmann::json ToJson() const;
};

struct Page {
  size_t limit = 100;  // 1..10000
  std::string after;   // the previous page's `next`
};

// A period [from, to) in epoch milliseconds; unset ends are open.
struct Period {
  int64_t from_ms = INT64_MIN;
  int64_t to_ms = INT64_MAX;
};
// What compliance work narrows a list by; an empty or open part matches everything.
// `level` is DISTRICT or MUNICIPAL (the programme's, in the catalogue in force), `source`
// a funding source without its FUNDING_SOURCE_ prefix; amounts are fen, inclusive.
struct Filter {
  Period period;
  std::string applicant_id, programme, level, source;
  int64_t min_fen = INT64_MIN, max_fen = INT64_MAX;
};

// "2026-01-01" (CST midnight) or "2026-01-01T08:30:00" (CST), or empty; InvalidArgument
// naming `what` otherwise.
Result<int64_t> ParseCstTime(std::string_view text, std::string_view what);
// Epoch milliseconds as "2026-01-01 08:30:00" in China Standard Time (UTC+8); "" for
// ms <= 0 (no time recorded).
std::string FormatCst(int64_t ms);

class Queries {
 public:
  explicit Queries(const Ledger& ledger) : ledger_(ledger) {}

  // Every entry of the applicant, in chain order, with totals per programme; `filter`
  // narrows the rows and the totals (its applicant_id is ignored).
  Result<QueryResult> Applicant(std::string_view applicant_id, const Page& page,
                                const Filter& filter = {}) const;
  // The applicant's money across every programme per CST year: approved, entitlement
  // after supersession, paid, clawed back, net; summary: the totals.
  Result<QueryResult> Totals(std::string_view applicant_id) const;
  // Every running cap the policy table holds for the applicant (yearly, window,
  // co-funding) and the once-only rewards it used, with the headroom left.
  Result<QueryResult> Headroom(std::string_view applicant_id) const;
  // Running caps (yearly, window, co-funding) of any applicant whose headroom is at most
  // `within_pct` percent of the cap (0..100).
  Result<QueryResult> NearCaps(int within_pct, const Page& page) const;
  // Accepted applications without an approval yet.
  Result<QueryResult> Pending(const Filter& filter, const Page& page) const;
  // Live (not superseded) accepted approvals of which no stage has been paid.
  Result<QueryResult> Unpaid(const Filter& filter, const Page& page) const;
  // Approvals (accepted and rejected) signed by one key.
  Result<QueryResult> Decisions(std::string_view key_id, const Filter& filter,
                                const Page& page) const;
  // Every catalogue ever published: version, hash, validity, the first entry it was
  // published at, how many partitions it was published in and is in force in.
  Result<QueryResult> Catalogues() const;
  // Possible double funding the rules cannot prove (docs/queries.md): pairs of accepted
  // approvals of one applicant in one overlap group under different project ids whose
  // applications are close in time or whose amounts are similar. For human review.
  Result<QueryResult> DoubleFunding(const Page& page) const;
  // Per programme and CST year: applications, approvals, payments, clawbacks, rejections
  // and their amounts, with the catalogue's caps and whether any approval exceeded them.
  // `programme` empty: every programme. `year` 0: every year.
  Result<QueryResult> Utilisation(std::string_view programme, int year) const;
  // Accepted stage payments in the period (by the payment's occurred_at), optionally of
  // one funding source and one level; summary: totals by source and level.
  Result<QueryResult> Payments(const Filter& filter, const Page& page) const;
  // Rejected entries in the period, optionally of one reason (and the filter's applicant,
  // programme, level, amount); summary: counts by reason and programme.
  Result<QueryResult> Rejections(const Filter& filter, std::string_view reason,
                                 const Page& page) const;
  // 从优、就高、不重复: approvals superseded by a higher one (with the winner and what was
  // carried over), and approvals rejected as DUPLICATE_SUPPORT (naming the winner).
  Result<QueryResult> Overlaps(const Page& page) const;
  // Stages of live approvals not paid yet; summary: the total outstanding per programme.
  Result<QueryResult> Outstanding(const Page& page) const;
  // Accepted clawbacks in the period, with the payments and approval they recover from.
  Result<QueryResult> Clawbacks(const Period& period, const Page& page) const;

 private:
  const Ledger& ledger_;
};

// Where the snapshot `txn` reads stands: per partition {"partition", "size",
// "checkpoint_size", "covered"}, where checkpoint_size is the size of the latest checkpoint
// the ledger signed of the partition within the snapshot (null when none) and covered says
// it signs the whole snapshot of the partition.
Result<nlohmann::json> LedgerPosition(const lmdb::Txn& txn, const Tables& tables);
// One line for people: "position 0:120/120 1:98/90 ..." (partition:size/checkpoint size,
// "-" for none).
std::string FormatPosition(const nlohmann::json& position);
// The version of the catalogue of each hash ever published (raw 32-byte hash -> version).
Result<std::map<std::string, std::string>> CatalogueVersions(const lmdb::Txn& txn,
                                                             const Tables& tables);

// The version of the catalogue the entry at (partition, sequence) was decided under; ""
// when it was decided before any (or the entry is not stored).
Result<std::string> CatalogueVersionAt(const lmdb::Txn& txn, const Tables& tables,
                                       uint32_t partition, uint64_t sequence);

// For each link of a proof bundle (docs/audit.md), in order: {"partition", "sequence",
// "event_id", "catalog"}, the version of the catalogue it was decided under.
Result<nlohmann::json> LinkCatalogues(const Ledger& ledger, const nlohmann::json& bundle);

// Renders a result as an aligned text table (for terminals) or as CSV (RFC 4180).
std::string FormatTable(const QueryResult& r);
std::string FormatCsv(const QueryResult& r);
// One CSV field (RFC 4180), quoted when it holds a comma, a quote or a line break, and
// neutralised when a spreadsheet would evaluate it (OWASP, "CSV Injection"): a cell
// starting with = + - @ TAB or CR, unless it is a plain number, gets a ' in front.
// NDJSON and JSON output keep every value exactly.
std::string CsvField(const std::string& s);
// The fields every row about an entry carries, from its body: type, event_id,
// applicant_id, programme, verdict, reason, amount_fen, detail (queries and export).
nlohmann::json EntryBodyFields(const ledger::v1::EntryBody& b);

}  // namespace g60
