// Compliance queries, answered from the ledger's indexes and totals (docs/queries.md):
// an applicant's history, programme utilisation against caps per year, payments and
// rejections in a period, overlap decisions (从优、就高、不重复), outstanding stages,
// clawbacks. Each runs in one LMDB read transaction, a consistent snapshot, so it can run
// in any process while ingest writes, and sees every batch committed before it began.
//
// Every answer is a table: named columns and rows (JSON objects keyed by column), an
// optional summary, and a page token. A query that pages returns at most `limit` rows
// and, when more may follow, `next`: pass it as `after` to continue.
#pragma once

#include <cstdint>
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
// "2026-01-01" (CST midnight) or "2026-01-01T08:30:00" (CST), or empty; InvalidArgument
// naming `what` otherwise.
Result<int64_t> ParseCstTime(std::string_view text, std::string_view what);
// Epoch milliseconds as "2026-01-01 08:30:00" in China Standard Time (UTC+8); "" for
// ms <= 0 (no time recorded).
std::string FormatCst(int64_t ms);

class Queries {
 public:
  explicit Queries(const Ledger& ledger) : ledger_(ledger) {}

  // Every entry of the applicant, in chain order, with totals per programme.
  Result<QueryResult> Applicant(std::string_view applicant_id, const Page& page) const;
  // Per programme and CST year: applications, approvals, payments, clawbacks, rejections
  // and their amounts, with the catalogue's caps and whether any approval exceeded them.
  // `programme` empty: every programme. `year` 0: every year.
  Result<QueryResult> Utilisation(std::string_view programme, int year) const;
  // Accepted stage payments in the period (by the payment's occurred_at), optionally of
  // one funding source and one level; summary: totals by source and level.
  Result<QueryResult> Payments(const Period& period, std::string_view source,
                               std::string_view level, const Page& page) const;
  // Rejected entries in the period, optionally of one reason; summary: counts by reason.
  Result<QueryResult> Rejections(const Period& period, std::string_view reason,
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
