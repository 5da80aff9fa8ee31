// The rules engine: a pure function of (state, record, pre-checked message) to a
// decision (verdict, reason, detail, effects). It reads state only through StateView
// and changes nothing itself; the store applies the effects in the same LMDB
// transaction as the entry. No clock, no randomness: replaying the same records over
// the same trust anchors gives the same decisions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ledger/catalog.h"
#include "ledger/event_view.h"
#include "ledger/status.h"

namespace g60 {

// One Kafka record, as delivered.
struct Record {
  std::string topic;
  uint32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
};

enum class SignatureCheck { kUnchecked, kValid, kInvalid };

// The state-free part of processing a record: decoding, field rules, and the
// signature check when the signer's public key is already known. Safe to run on any
// thread.
struct Prechecked {
  DecodedMessage decoded;
  SignatureCheck signature = SignatureCheck::kUnchecked;
};

// Looks up a public key by key id; empty when unknown. Must be thread-safe.
using PublicKeyLookup = std::function<std::string(std::string_view key_id)>;
Prechecked Precheck(std::string_view value, const PublicKeyLookup& lookup);
// Runs Precheck over `records` on `threads` threads (the caller's among them).
void PrecheckAll(const std::vector<Record>& records, std::vector<Prechecked>& out,
                 const PublicKeyLookup& lookup, unsigned threads);

// Public keys seen in KeyGrant events before their grants are decided, so that the
// pre-check can verify the events a new key signs while its grant is still in a batch
// not yet committed. A key id is the hash of its key (KeyIdOf), so a signature checked
// with a key found here is a fact about the bytes; whether the key may sign anything is
// still decided by the rules, from the keys table. Thread-safe.
class SeenKeys {
 public:
  // Remembers the public key of a KeyGrant event; other messages are ignored.
  void Learn(const DecodedMessage& d);
  // The public key whose key id is `key_id`, or "".
  std::string Find(std::string_view key_id) const;

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::string> keys_;  // KeyIdOf(public key) -> public key
};

// Read access to one partition's state as of the record being decided.
class StateView {
 public:
  virtual ~StateView() = default;
  // Trust anchors appear as admin keys that are always valid and never revoked.
  virtual Result<std::optional<ledger::v1::KeyState>> Key(std::string_view key_id) = 0;
  // Events are named by applicant and event id (EventKey; "" for control events).
  // The chain index of the entry that claimed this event, if any.
  virtual Result<std::optional<uint64_t>> EventClaimedAt(std::string_view applicant_id,
                                                         std::string_view event_id) = 0;
  virtual Result<std::optional<ledger::v1::ApplicationState>> Application(
      std::string_view applicant_id, std::string_view event_id) = 0;
  virtual Result<std::optional<ledger::v1::ApprovalState>> Approval(std::string_view applicant_id,
                                                                    std::string_view event_id) = 0;
  virtual Result<std::optional<ledger::v1::PaymentState>> Payment(std::string_view applicant_id,
                                                                  std::string_view event_id) = 0;
  virtual Result<std::optional<ledger::v1::PolicyRecord>> Policy(std::string_view key) = 0;
  // The catalogue in force (the last one published in this partition), or nullptr.
  virtual Result<std::shared_ptr<const CatalogIndex>> Catalog() = 0;
  // The topic's partition count the ledger recorded at creation (> 0).
  virtual uint32_t PartitionCount() = 0;
};

// Trust anchors' KeyState carries this granted_at_seq (they are granted by configuration).
inline constexpr uint64_t kAnchorGrantSeq = UINT64_MAX;

// A change of state; applied in order after the decision.
struct Effect {
  enum class Kind {
    kClaimEventId,
    kPutKey,
    kPutApplication,
    kPutApproval,
    kPutPayment,
    kPutPolicy,
    kPublishCatalog,
  };
  Kind kind;
  // EventKey (kClaimEventId, kPutApplication, kPutApproval, kPutPayment), key id, policy
  // key, or catalogue hash (32 bytes)
  std::string id;
  std::string value;  // serialised state message or catalogue (empty for kClaimEventId)
};

struct Decision {
  ledger::v1::Verdict verdict = ledger::v1::VERDICT_REJECTED;
  Reason reason = Reason::REASON_NONE;
  std::string detail;
  std::string programme;
  int64_t amount_fen = 0;
  std::vector<Effect> effects;
  std::string catalog_hash;        // the catalogue in force (32 bytes), if any
  std::vector<std::string> notes;  // effects on other records, for people (EntryBody.effects)
};

// The note (EntryBody.effects) of an approval rejected as DUPLICATE_SUPPORT, followed by
// the id of the approval that supports the project instead.
inline constexpr std::string_view kDuplicateOfNote = "duplicate of approval ";

// Policy table keys: parts joined by NUL (ids are printable, so never contain one).
std::string PolicyKey(std::initializer_list<std::string_view> parts);

// Decides one record. `sequence` is the chain index its entry will get. An Error is an
// operating failure (state could not be read), never a verdict.
Result<Decision> Decide(StateView& state, const Record& record, const Prechecked& pre,
                        uint64_t sequence);

// Which role may sign an event of this type; for approvals, the approver of `level`.
v1::Role RequiredRole(EventType type, v1::Level level);

}  // namespace g60
