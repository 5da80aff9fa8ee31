// Proof bundles (docs/audit.md gives the exact JSON): self-contained evidence that
// entries are in the ledger, for an auditor who holds only the ledger's checkpoint key
// and the trust anchors.
//
// A bundle lists links. Each link carries one entry's stored bytes, the signed event
// inside it (also decoded, for people), an RFC 9162 inclusion proof and the signed
// checkpoint it proves against. The key grants that make each signature checkable are
// links too, back to a trust anchor. `prove` bundles one event; `trace` bundles a payment
// chain: application, approval, stages paid, clawbacks, and the approvals superseded or
// superseding it under 从优、就高、不重复.
//
// VerifyBundle needs no ledger: every field of every link is recomputed from the entry
// bytes and must match, so an edit anywhere is caught.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ledger/note.h"
#include "ledger/store.h"

namespace g60 {

inline constexpr std::string_view kBundleFormat = "g60ledger-bundle/v1";

struct EntryRef {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  bool operator<(const EntryRef& o) const {
    return partition != o.partition ? partition < o.partition : sequence < o.sequence;
  }
  bool operator==(const EntryRef& o) const = default;
};

// An entry that claimed an event id, and the applicant whose event it is ("" for a
// control event).
struct FoundEvent {
  EntryRef at;
  std::string applicant_id;
};

// Every entry that claimed `event_id`, for every applicant that used it (event ids are
// unique per applicant: docs/formats.md, "Event identity"); a control event once per
// partition. Rejected forgeries claim no id: use positions.
Result<std::vector<FoundEvent>> FindEvent(const lmdb::Txn& txn, const Tables& t,
                                          std::string_view event_id);

// The entries of one event: `event_id` of `applicant_id`, or, when no applicant is given,
// of the only applicant that used the id (a control event: its entry in every partition).
// NotFound when no such event is on the record; InvalidArgument naming every applicant
// (with partition and entry) when several used the id and none was named.
Result<std::vector<EntryRef>> ResolveEvent(const lmdb::Txn& txn, const Tables& t,
                                           std::string_view event_id,
                                           std::optional<std::string_view> applicant_id);

// The entries of the payment chain an application, approval, payment or clawback
// belongs to, in chain order. The event is found as ResolveEvent finds it.
Result<std::vector<EntryRef>> TraceEntries(const lmdb::Txn& txn, const Tables& t,
                                           std::string_view event_id,
                                           std::optional<std::string_view> applicant_id);

// Builds a bundle of `entries` (plus the key grants their signatures rest on), each
// proved against the partition's latest checkpoint. `kind` is "event" or "trace".
Result<nlohmann::json> BuildBundle(const Ledger& ledger, const std::vector<EntryRef>& entries,
                                   std::string_view kind, std::string_view subject);

struct BundleTrust {
  note::Verifier ledger_key;               // name and public key of the checkpoint signer
  std::vector<std::string> trust_anchors;  // raw 32-byte Ed25519 public keys
};

// What a verified link says.
struct VerifiedLink {
  std::string role;
  EntryRef at;
  std::string event_id;
  std::string event_type;
  std::string verdict;
  std::string reason;
  int64_t amount_fen = 0;
  std::string detail;
  std::string origin;
  uint64_t tree_size = 0;
  std::string signer;  // "anchor <key id>" or "key <key id> granted at entry N"
};

// Checks a bundle offline. Any failure is an error naming the link and the field.
Result<std::vector<VerifiedLink>> VerifyBundle(const nlohmann::json& bundle,
                                               const BundleTrust& trust);

}  // namespace g60
