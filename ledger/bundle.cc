#include "ledger/bundle.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <deque>
#include <map>
#include <set>

#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ledger/index.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"
#include "ledger/rules.h"
#include "ledger/strict_json.h"

namespace g60 {

namespace {

using ledger::v1::EntryBody;
using nlohmann::json;

Result<std::string> ReadEntryBytes(const lmdb::Txn& txn, const Tables& t, EntryRef at) {
  auto v = txn.Get(t.entries, EntryKey(at.partition, at.sequence));
  if (!v) return Fail(v.error());
  if (!*v) {
    return Fail(
        Error::NotFound(fmt::format("no entry {} in partition {}", at.sequence, at.partition)));
  }
  return std::string(**v);
}

const char* RoleOf(EventType type) {
  switch (type) {
    case EventType::EVENT_TYPE_APPLICATION:
      return "application";
    case EventType::EVENT_TYPE_APPROVAL:
      return "approval";
    case EventType::EVENT_TYPE_STAGE_PAYMENT:
      return "payment";
    case EventType::EVENT_TYPE_CLAWBACK:
      return "clawback";
    case EventType::EVENT_TYPE_KEY_GRANT:
      return "key-grant";
    case EventType::EVENT_TYPE_KEY_REVOKE:
      return "key-revoke";
    case EventType::EVENT_TYPE_CATALOG_PUBLISHED:
      return "catalog";
    default:
      return "undecodable";
  }
}

// The fields of a link that are read from its entry: what the builder writes and what
// the verifier recomputes and compares.
json DerivedFields(const EntryHeader& h, const EntryBody& b, const DecodedMessage& d) {
  json j;
  j["role"] = RoleOf(b.event_type());
  j["partition"] = h.partition;
  j["sequence"] = h.sequence;
  j["event_id"] = b.event_id();
  j["event_type"] = EventTypeName(b.event_type());
  j["applicant_id"] = b.applicant_id();
  j["programme"] = b.programme();
  j["verdict"] = b.verdict() == ledger::v1::VERDICT_ACCEPTED ? "ACCEPTED" : "REJECTED";
  j["reason"] = ReasonName(b.reason());
  j["amount_fen"] = b.amount_fen();
  j["detail"] = b.detail();
  j["effects"] = json::array();
  for (const auto& e : b.effects())
    j["effects"].push_back(e);
  j["key_id"] = b.key_id();
  j["signed_event"] = Base64Encode(b.value());
  if (d.reason != Reason::REASON_MALFORMED_MESSAGE && d.reason != Reason::REASON_MALFORMED_EVENT) {
    std::string text;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    if (google::protobuf::util::MessageToJsonString(d.event, &text, o).ok()) {
      j["event"] = json::parse(text);
    }
  }
  return j;
}

Result<std::string> ReadApprovalLinks(const lmdb::Txn& txn, const Tables& t, uint32_t partition,
                                      std::string_view applicant, std::string_view id,
                                      ledger::v1::ApprovalState* out) {
  auto v = txn.Get(t.approvals, PartitionKey(partition, EventKey(id, applicant)));
  if (!v) return Fail(v.error());
  if (!*v) return std::string();
  if (!out->ParseFromArray((*v)->data(), static_cast<int>((*v)->size()))) {
    return Fail(Error::DataLoss(fmt::format("approval {} state does not parse", id)));
  }
  return std::string(id);
}

Result<std::optional<uint64_t>> ClaimedAt(const lmdb::Txn& txn, const Tables& t, uint32_t partition,
                                          std::string_view applicant, std::string_view id) {
  auto v = txn.Get(t.event_ids, PartitionKey(partition, EventKey(id, applicant)));
  if (!v) return Fail(v.error());
  if (!*v) return std::optional<uint64_t>{};
  if ((*v)->size() != 8) return Fail(Error::DataLoss("event_ids value is not 8 bytes"));
  return std::optional<uint64_t>(GetU64BE(reinterpret_cast<const unsigned char*>((*v)->data())));
}

}  // namespace

Result<std::vector<FoundEvent>> FindEvent(const lmdb::Txn& txn, const Tables& t,
                                          std::string_view event_id) {
  auto heads = ReadHeads(txn, t);
  if (!heads) return Fail(heads.error());
  auto cursor = lmdb::Cursor::Open(txn, t.event_ids);
  if (!cursor) return Fail(cursor.error());
  std::vector<FoundEvent> out;
  for (const auto& h : *heads) {
    // Every applicant's use of the id is one key range: partition || id || NUL.
    const std::string prefix = PartitionKey(h.partition, EventKeyPrefix(event_id));
    for (auto ok = cursor->Seek(prefix);; ok = cursor->Next()) {
      if (!ok) return Fail(ok.error());
      if (!*ok || !cursor->key().starts_with(prefix)) break;
      if (cursor->value().size() != 8)
        return Fail(Error::DataLoss("event_ids value is not 8 bytes"));
      out.push_back(FoundEvent{
          EntryRef{h.partition,
                   GetU64BE(reinterpret_cast<const unsigned char*>(cursor->value().data()))},
          std::string(cursor->key().substr(prefix.size()))});
    }
  }
  return out;
}

Result<std::vector<EntryRef>> ResolveEvent(const lmdb::Txn& txn, const Tables& t,
                                           std::string_view event_id,
                                           std::optional<std::string_view> applicant_id) {
  auto found = FindEvent(txn, t, event_id);
  if (!found) return Fail(found.error());
  std::map<std::string, std::vector<EntryRef>> by_applicant;
  for (const auto& f : *found) {
    if (!applicant_id || f.applicant_id == *applicant_id)
      by_applicant[f.applicant_id].push_back(f.at);
  }
  if (by_applicant.empty()) {
    return Fail(Error::NotFound(
        applicant_id
            ? fmt::format("applicant {} has no event {} on the record",
                          Utf8OrEscaped(std::string(*applicant_id)),
                          Utf8OrEscaped(std::string(event_id)))
            : fmt::format("no event {} is on the record", Utf8OrEscaped(std::string(event_id)))));
  }
  if (by_applicant.size() > 1) {
    std::string who;
    for (const auto& [applicant, refs] : by_applicant) {
      if (!who.empty()) who += ", ";
      who += fmt::format("{} (partition {}, entry {})",
                         applicant.empty() ? "a control event" : Utf8OrEscaped(applicant),
                         refs.front().partition, refs.front().sequence);
    }
    return Fail(Error::InvalidArgument(
        fmt::format("event id {} is used by {} applicants: {}; event ids are unique per "
                    "applicant, so name the applicant (--applicant, or ?applicant= over HTTP)",
                    Utf8OrEscaped(std::string(event_id)), by_applicant.size(), who)));
  }
  return by_applicant.begin()->second;
}

Result<std::vector<EntryRef>> TraceEntries(const lmdb::Txn& txn, const Tables& t,
                                           std::string_view event_id,
                                           std::optional<std::string_view> applicant_id) {
  auto found = ResolveEvent(txn, t, event_id, applicant_id);
  if (!found) return Fail(found.error());
  if (found->size() > 1) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} is a control event (recorded in {} partitions); trace follows payments, "
                    "approvals and applications",
                    event_id, found->size())));
  }
  const EntryRef subject = found->front();
  const uint32_t p = subject.partition;
  auto bytes = ReadEntryBytes(txn, t, subject);
  if (!bytes) return Fail(bytes.error());
  auto entry = DecodeEntry(*bytes);
  if (!entry) return Fail(entry.error());
  DecodedMessage d = DecodeMessage(entry->body.value());
  // Events name one another within their applicant (EventKey).
  const std::string& applicant = d.event.applicant_id();

  std::string approval;
  switch (d.type) {
    case EventType::EVENT_TYPE_APPLICATION: {
      auto v = txn.Get(t.applications, PartitionKey(p, EventKey(event_id, applicant)));
      if (!v) return Fail(v.error());
      ledger::v1::ApplicationState app;
      if (*v && app.ParseFromArray((*v)->data(), static_cast<int>((*v)->size()))) {
        approval = app.approval_event_id();
      }
      break;
    }
    case EventType::EVENT_TYPE_APPROVAL:
      approval = std::string(event_id);
      break;
    case EventType::EVENT_TYPE_STAGE_PAYMENT:
      approval = d.event.stage_payment().approval_event_id();
      break;
    case EventType::EVENT_TYPE_CLAWBACK: {
      if (d.event.clawback().payment_event_ids_size() == 0) break;
      auto v =
          txn.Get(t.payments,
                  PartitionKey(p, EventKey(d.event.clawback().payment_event_ids(0), applicant)));
      if (!v) return Fail(v.error());
      ledger::v1::PaymentState pay;
      if (*v && pay.ParseFromArray((*v)->data(), static_cast<int>((*v)->size()))) {
        approval = pay.approval_event_id();
      }
      break;
    }
    default:
      return Fail(Error::InvalidArgument(
          fmt::format("{} is a {} event; trace follows payments, approvals and applications",
                      event_id, EventTypeName(d.type))));
  }

  std::set<EntryRef> refs{subject};
  auto add_event = [&](std::string_view id) -> Status {
    if (id.empty()) return {};
    auto seq = ClaimedAt(txn, t, p, applicant, id);
    if (!seq) return Fail(seq.error());
    if (*seq) refs.insert(EntryRef{p, **seq});
    return {};
  };
  // Every approval linked to this one by supersession, either way, transitively.
  std::set<std::string> seen;
  std::deque<std::string> to_visit;  // approvals found, not yet read
  if (!approval.empty()) to_visit.push_back(approval);
  while (!to_visit.empty()) {
    std::string id = std::move(to_visit.front());
    to_visit.pop_front();
    if (!seen.insert(id).second) continue;
    ledger::v1::ApprovalState ap;
    auto known = ReadApprovalLinks(txn, t, p, applicant, id, &ap);
    if (!known) return Fail(known.error());
    G60_TRY(add_event(id));
    if (known->empty()) continue;  // named by a payment, never approved
    G60_TRY(add_event(ap.application_event_id()));
    G60_TRY(ScanIndex(txn, t.index, IndexKind::kApproval,
                      IndexTerm(EventKey(id, entry->body.applicant_id())), IndexPosition{p, 0},
                      [&](IndexPosition pos) {
                        if (pos.partition != p) return false;
                        refs.insert(EntryRef{pos.partition, pos.sequence});
                        return true;
                      }));
    if (!ap.supersedes().empty()) to_visit.push_back(ap.supersedes());
    if (!ap.superseded_by().empty()) to_visit.push_back(ap.superseded_by());
  }
  return std::vector<EntryRef>(refs.begin(), refs.end());
}

Result<json> BuildBundle(const Ledger& ledger, const std::vector<EntryRef>& entries,
                         std::string_view kind, std::string_view subject) {
  auto txn_or = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn_or) return Fail(txn_or.error());
  const lmdb::Txn& txn = *txn_or;
  const Tables& t = ledger.tables();
  auto verifier = CheckpointVerifierKey(txn, t);
  if (!verifier) return Fail(verifier.error());
  if (!*verifier) {
    return Fail(Error::FailedPrecondition(
        "the ledger has no signed checkpoint yet: a proof needs one (ingest issues them; "
        "`g60ledger checkpoint --issue` signs one now)"));
  }
  auto key = note::ParseVerifierKey(**verifier);
  if (!key) return Fail(key.error());

  // The entries asked for, and the key grants behind their signatures, back to anchors.
  // The anchors the ledger was created with (whatever this reader was opened with).
  std::set<std::string> anchors;
  auto blob = txn.Get(t.meta, "anchors");
  if (!blob) return Fail(blob.error());
  if (!*blob || (*blob)->size() % kPublicKeySize != 0) {
    return Fail(Error::DataLoss("the ledger's meta table has no valid trust anchor record"));
  }
  for (size_t i = 0; i < (*blob)->size(); i += kPublicKeySize)
    anchors.insert(KeyIdOf((*blob)->substr(i, kPublicKeySize)));
  std::map<EntryRef, std::pair<std::string, DecodedEntry>> links;
  std::deque<EntryRef> to_visit(entries.begin(), entries.end());
  while (!to_visit.empty()) {
    EntryRef at = to_visit.front();
    to_visit.pop_front();
    if (links.count(at)) continue;
    auto bytes = ReadEntryBytes(txn, t, at);
    if (!bytes) return Fail(bytes.error());
    auto entry = DecodeEntry(*bytes);
    if (!entry) return Fail(entry.error());
    const EntryBody& b = entry->body;
    if (b.verdict() == ledger::v1::VERDICT_ACCEPTED && !anchors.count(b.key_id())) {
      auto ks = txn.Get(t.keys, PartitionKey(at.partition, b.key_id()));
      if (!ks) return Fail(ks.error());
      ledger::v1::KeyState state;
      if (!*ks || !state.ParseFromArray((*ks)->data(), static_cast<int>((*ks)->size()))) {
        return Fail(Error::DataLoss(fmt::format("key {} of entry {}/{} is not in the keys table",
                                                b.key_id(), at.partition, at.sequence)));
      }
      to_visit.push_back(EntryRef{at.partition, state.granted_at_seq()});
    }
    links.emplace(at, std::make_pair(std::move(*bytes), std::move(*entry)));
  }

  std::map<uint32_t, StoredCheckpoint> checkpoints;
  json out;
  out["format"] = kBundleFormat;
  out["kind"] = kind;
  out["subject"] = subject;
  out["ledger"] = key->name;
  out["links"] = json::array();
  for (const auto& [at, link] : links) {
    const auto& [bytes, entry] = link;
    auto cp = checkpoints.find(at.partition);
    if (cp == checkpoints.end()) {
      auto latest = LatestCheckpoint(txn, t, at.partition);
      if (!latest) return Fail(latest.error());
      if (!*latest) {
        return Fail(Error::FailedPrecondition(
            fmt::format("partition {} has no signed checkpoint yet", at.partition)));
      }
      cp = checkpoints.emplace(at.partition, std::move(**latest)).first;
    }
    if (at.sequence >= cp->second.size) {
      return Fail(Error::FailedPrecondition(fmt::format(
          "entry {} of partition {} is not covered by a checkpoint yet (the latest covers {} "
          "entries); the next is issued within the configured interval, or run `g60ledger "
          "checkpoint --issue`",
          at.sequence, at.partition, cp->second.size)));
    }
    auto proof =
        merkle::InclusionProof(MerkleNodes(txn, t, at.partition), at.sequence, cp->second.size);
    if (!proof) return Fail(proof.error());
    json j = DerivedFields(entry.header, entry.body, DecodeMessage(entry.body.value()));
    j["entry"] = Base64Encode(bytes);
    j["leaf_hash"] = Base64Encode(AsBytes(EntryHash(bytes)));
    json hashes = json::array();
    for (const auto& h : *proof)
      hashes.push_back(Base64Encode(AsBytes(h)));
    j["inclusion_proof"] = {
        {"leaf_index", at.sequence}, {"tree_size", cp->second.size}, {"hashes", hashes}};
    j["checkpoint"] = cp->second.note;
    out["links"].push_back(std::move(j));
  }
  return out;
}

// ---- Verification: reads only the bundle, the ledger key and the trust anchors.

namespace {

Result<Hash> HashFromBase64(const json& j, const std::string& what) {
  if (!j.is_string()) return Fail(Error::InvalidArgument(what + " is not a string"));
  auto raw = Base64Decode(j.get<std::string>());
  if (!raw || raw->size() != 32) {
    return Fail(Error::InvalidArgument(what + " is not the base64 of a 32-byte hash"));
  }
  Hash h;
  std::copy(raw->begin(), raw->end(), h.begin());
  return h;
}

struct Checked {
  DecodedEntry entry;
  DecodedMessage msg;
};

}  // namespace

Result<std::vector<VerifiedLink>> VerifyBundle(const json& bundle, const BundleTrust& trust) {
  G60_TRY(
      RequireMembers(bundle, {"format", "kind", "subject", "ledger", "links"}, {}, "the bundle"));
  if (bundle["format"] != kBundleFormat) {
    return Fail(Error::InvalidArgument(
        fmt::format("the bundle's format is {}, not {}", bundle["format"].dump(), kBundleFormat)));
  }
  if (bundle["kind"] != "event" && bundle["kind"] != "trace") {
    return Fail(Error::InvalidArgument("the bundle's kind is neither \"event\" nor \"trace\""));
  }
  if (bundle["ledger"] != trust.ledger_key.name) {
    return Fail(
        Error::InvalidArgument(fmt::format("the bundle is from ledger {}, the key given is {}'s",
                                           bundle["ledger"].dump(), trust.ledger_key.name)));
  }
  if (!bundle["subject"].is_string())
    return Fail(Error::InvalidArgument("subject is not a string"));
  const json& links = bundle["links"];
  if (!links.is_array() || links.empty()) {
    return Fail(Error::InvalidArgument("the bundle's links are not a non-empty array"));
  }
  std::map<std::string, std::string> anchors;  // key id -> public key
  for (const auto& a : trust.trust_anchors)
    anchors.emplace(KeyIdOf(a), a);

  std::vector<VerifiedLink> out;
  std::map<EntryRef, Checked> checked;  // links verified so far, by position
  std::optional<EntryRef> previous;
  for (size_t i = 0; i < links.size(); ++i) {
    const json& l = links[i];
    std::string what = fmt::format("link {}", i);
    auto fail = [&](const std::string& msg) {
      return Fail(Error::InvalidArgument(what + ": " + msg));
    };
    G60_TRY(RequireMembers(
        l,
        {"role", "partition", "sequence", "event_id", "event_type", "applicant_id", "programme",
         "verdict", "reason", "amount_fen", "detail", "effects", "key_id", "signed_event", "entry",
         "leaf_hash", "inclusion_proof", "checkpoint"},
        {"event"}, what));
    // The entry bytes, and every field read from them.
    if (!l["entry"].is_string()) return fail("entry is not a string");
    auto bytes = Base64Decode(l["entry"].get<std::string>());
    if (!bytes) return fail("entry is not base64");
    auto entry = DecodeEntry(*bytes);
    if (!entry) return fail("entry: " + entry.error().message());
    EntryRef at{entry->header.partition, entry->header.sequence};
    what = fmt::format("link {} (partition {} entry {})", i, at.partition, at.sequence);
    if (previous && !(*previous < at)) return fail("links are not in (partition, sequence) order");
    previous = at;
    DecodedMessage msg = DecodeMessage(entry->body.value());
    json derived = DerivedFields(entry->header, entry->body, msg);
    derived["leaf_hash"] = Base64Encode(AsBytes(EntryHash(*bytes)));
    derived["entry"] = l["entry"];
    derived["inclusion_proof"] = l["inclusion_proof"];
    derived["checkpoint"] = l["checkpoint"];
    for (const auto& [k, v] : l.items()) {
      if (!derived.contains(k))
        return fail(fmt::format("\"{}\" is given but the entry has none", k));
      if (!SameJson(derived[k], v)) {
        return fail(fmt::format("\"{}\" is {} in the bundle but {} in the entry", k, v.dump(),
                                derived[k].dump()));
      }
    }
    if (derived.size() != l.size()) return fail("a field read from the entry is missing");

    // The inclusion proof against the signed checkpoint.
    if (!l["checkpoint"].is_string()) return fail("checkpoint is not a string");
    auto opened =
        OpenCheckpoint(l["checkpoint"].get<std::string>(), trust.ledger_key, at.partition);
    if (!opened) return fail("checkpoint: " + opened.error().message);
    const note::Checkpoint& cp = opened->checkpoint;
    const json& ip = l["inclusion_proof"];
    G60_TRY(
        RequireMembers(ip, {"leaf_index", "tree_size", "hashes"}, {}, what + " inclusion_proof"));
    if (!ip["leaf_index"].is_number_unsigned() || ip["leaf_index"].get<uint64_t>() != at.sequence) {
      return fail("inclusion_proof.leaf_index is not the entry's sequence");
    }
    if (!ip["tree_size"].is_number_unsigned() || ip["tree_size"].get<uint64_t>() != cp.size) {
      return fail("inclusion_proof.tree_size is not the checkpoint's size");
    }
    if (!ip["hashes"].is_array()) return fail("inclusion_proof.hashes is not an array");
    std::vector<Hash> proof;
    for (size_t k = 0; k < ip["hashes"].size(); ++k) {
      auto h = HashFromBase64(ip["hashes"][k], fmt::format("inclusion_proof.hashes[{}]", k));
      if (!h) return fail(h.error().message());
      proof.push_back(*h);
    }
    if (auto ok = merkle::VerifyInclusion(at.sequence, cp.size, EntryHash(*bytes), proof, cp.root);
        !ok) {
      return fail("inclusion proof: " + ok.error().message());
    }

    VerifiedLink v;
    const EntryBody& b = entry->body;
    v.role = l["role"];
    v.at = at;
    v.event_id = b.event_id();
    v.event_type = EventTypeName(b.event_type());
    v.verdict = derived["verdict"];
    v.reason = ReasonName(b.reason());
    v.amount_fen = b.amount_fen();
    v.detail = b.detail();
    v.origin = cp.origin;
    v.tree_size = cp.size;

    // An accepted event's signature, by a trust anchor or by a key whose grant is an
    // earlier link of the same partition (itself checked the same way), in the role
    // its event type needs, valid at the record's timestamp.
    if (b.verdict() == ledger::v1::VERDICT_ACCEPTED) {
      if (!msg.ok()) return fail("an accepted entry whose event does not decode");
      const std::string& key_id = msg.signed_event.key_id();
      std::string public_key;
      v1::Role role = v1::ROLE_UNSPECIFIED;
      int64_t valid_from = 0, valid_until = 0;
      if (auto a = anchors.find(key_id); a != anchors.end()) {
        public_key = a->second;
        role = v1::ROLE_ADMIN;
        v.signer = "trust anchor " + key_id;
      } else {
        for (const auto& [gat, g] : checked) {
          if (gat.partition != at.partition || !(gat < at)) continue;
          if (g.msg.type != EventType::EVENT_TYPE_KEY_GRANT ||
              g.entry.body.verdict() != ledger::v1::VERDICT_ACCEPTED) {
            continue;
          }
          const auto& kg = g.msg.event.key_grant();
          if (KeyIdOf(kg.public_key()) != key_id) continue;
          public_key = kg.public_key();
          role = kg.role();
          valid_from = kg.valid_from_ms();
          valid_until = kg.valid_until_ms();
          v.signer = fmt::format("key {} granted at entry {}", key_id, gat.sequence);
        }
        if (public_key.empty()) {
          return fail(
              fmt::format("signer {} is neither a trust anchor nor granted by an earlier "
                          "key-grant link of this partition",
                          key_id));
        }
        int64_t ts = b.source().timestamp_ms();
        if (ts < valid_from || (valid_until != 0 && ts >= valid_until)) {
          return fail(fmt::format("key {} was not valid at the record's timestamp {}", key_id, ts));
        }
      }
      if (!VerifyDetached(public_key, msg.signed_event.signature(), kEventSignaturePrefix,
                          msg.signed_event.event())) {
        return fail(fmt::format("the event's signature does not verify with key {}", key_id));
      }
      v1::Level level = msg.type == EventType::EVENT_TYPE_APPROVAL ? msg.event.approval().level()
                                                                   : v1::LEVEL_UNSPECIFIED;
      if (RequiredRole(msg.type, level) != role) {
        return fail(fmt::format("key {} has role {}; a {} event needs {}", key_id, RoleName(role),
                                EventTypeName(msg.type), RoleName(RequiredRole(msg.type, level))));
      }
    }
    checked.emplace(at, Checked{std::move(*entry), std::move(msg)});
    out.push_back(std::move(v));
  }

  // The subject is in the bundle; in a trace, every accepted link's references are too.
  // EventKey(event id, applicant) -> role, of the accepted links: event ids are unique per
  // applicant, and a key grant (no applicant) may carry an applicant event's id.
  std::map<std::string, std::string> accepted_roles;
  bool subject_found = false;
  const std::string subject = bundle["subject"];
  for (const auto& v : out) {
    if (v.event_id == subject || fmt::format("{}:{}", v.at.partition, v.at.sequence) == subject) {
      subject_found = true;
    }
    if (v.verdict == "ACCEPTED") {
      accepted_roles[EventKey(v.event_id, checked.at(v.at).msg.event.applicant_id())] = v.role;
    }
  }
  if (!subject_found) {
    return Fail(Error::InvalidArgument(fmt::format("no link is the bundle's subject {}", subject)));
  }
  if (bundle["kind"] == "trace") {
    auto need = [&](const VerifiedLink& v, const std::string& id, const char* role) -> Status {
      // An event names events of its own applicant.
      auto it = accepted_roles.find(EventKey(id, checked.at(v.at).msg.event.applicant_id()));
      if (it == accepted_roles.end() || it->second != role) {
        return Fail(Error::InvalidArgument(
            fmt::format("trace: {} {} names {} {}, which is not an accepted link of the trace",
                        v.role, v.event_id, role, id)));
      }
      return {};
    };
    for (const auto& v : out) {
      if (v.verdict != "ACCEPTED") continue;
      const auto& e = checked.at(v.at).msg.event;
      if (v.role == "approval")
        G60_TRY(need(v, e.approval().application_event_id(), "application"));
      if (v.role == "payment") G60_TRY(need(v, e.stage_payment().approval_event_id(), "approval"));
      if (v.role == "clawback") {
        for (const auto& id : e.clawback().payment_event_ids())
          G60_TRY(need(v, id, "payment"));
      }
    }
  }
  return out;
}

}  // namespace g60
