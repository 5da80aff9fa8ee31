#include "ledger/summary.h"

#include "ledger/entry.h"

#include <algorithm>

namespace g60 {

namespace {
Status AddChecked(int64_t& total, int64_t amount) {
  if (__builtin_add_overflow(total, amount, &total)) {
    return Fail(Error::DataLoss("a total overflows int64 fen"));
  }
  return {};
}
}  // namespace

Result<LedgerSummary> Summarize(const Ledger& ledger) {
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Fail(txn.error());
  auto cur = lmdb::Cursor::Open(*txn, ledger.tables().entries);
  if (!cur) return Fail(cur.error());
  LedgerSummary s;
  for (auto ok = cur->First();; ok = cur->Next()) {
    if (!ok) return Fail(ok.error());
    if (!*ok) break;
    auto entry = DecodeEntry(cur->value());
    if (!entry) return Fail(entry.error());
    const auto& body = entry->body;
    ++s.entries;
    ++s.entries_by_type[EventTypeName(body.event_type())];
    if (body.verdict() != ledger::v1::VERDICT_ACCEPTED) {
      ++s.rejected;
      ++s.rejected_by_reason[ReasonName(body.reason())];
      continue;
    }
    ++s.accepted;
    if (body.programme().empty()) continue;
    for (ProgrammeTotals* t : {&s.programmes[body.programme()], &s.total}) {
      switch (body.event_type()) {
        case EventType::EVENT_TYPE_APPLICATION:
          ++t->applications;
          break;
        case EventType::EVENT_TYPE_APPROVAL:
          ++t->approvals;
          t->largest_approval_fen = std::max(t->largest_approval_fen, body.amount_fen());
          G60_TRY(AddChecked(t->approved_fen, body.amount_fen()));
          break;
        case EventType::EVENT_TYPE_STAGE_PAYMENT:
          G60_TRY(AddChecked(t->paid_fen, body.amount_fen()));
          break;
        case EventType::EVENT_TYPE_CLAWBACK:
          G60_TRY(AddChecked(t->clawed_back_fen, body.amount_fen()));
          break;
        default:
          break;
      }
    }
  }
  auto heads = ReadHeads(*txn, ledger.tables());
  if (heads && !heads->empty()) {
    TxnStateView view(*txn, ledger.tables(), heads->front().partition, ledger.anchor_keys(),
                      ledger.catalogs(), ledger.partition_count());
    auto catalog = view.Catalog();
    if (!catalog) return Fail(catalog.error());
    s.catalog = *catalog;
  }
  if (!heads) return Fail(heads.error());
  s.heads = std::move(*heads);
  return s;
}

}  // namespace g60
