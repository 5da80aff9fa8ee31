#include "producers/signer.h"

#include <fmt/format.h>

#include "ledger/crypto.h"
#include "ledger/event_view.h"
#include "ledger/rules.h"

namespace g60 {

v1::SignedEvent SignEventBytes(std::string event_bytes, const KeyFile& key) {
  v1::SignedEvent se;
  se.set_signature(SignDetached(key.secret_key, kEventSignaturePrefix, event_bytes));
  se.set_key_id(key.key_id);
  se.set_event(std::move(event_bytes));
  return se;
}

std::string SignEvent(const v1::Event& event, const KeyFile& key) {
  std::string bytes;
  G60_ASSERT(event.SerializeToString(&bytes));
  std::string out;
  G60_ASSERT(SignEventBytes(std::move(bytes), key).SerializeToString(&out));
  return out;
}

Result<std::string> Signer::Sign(const v1::Event& event) const {
  G60_ASSERT(!keys_.empty());
  EventType type = TypeOf(event);
  v1::Role needed =
      RequiredRole(type, type == EventType::EVENT_TYPE_APPROVAL ? event.approval().level()
                                                                : v1::LEVEL_UNSPECIFIED);
  if (keys_.size() == 1) {
    const KeyFile& only = keys_.front();
    if (any_role_ || only.role == v1::ROLE_UNSPECIFIED || needed == v1::ROLE_UNSPECIFIED ||
        only.role == needed) {
      return SignEvent(event, only);
    }
    return Fail(Error::InvalidArgument(fmt::format(
        "this {} event needs a key with the role {}, and the only --key given has the role {} "
        "(key id {}); the ledger would reject it, so nothing was signed: give the {} key with "
        "--key (--key may be repeated, one per role)",
        EventTypeName(type), RoleName(needed), RoleName(only.role), only.key_id,
        RoleName(needed))));
  }
  for (const KeyFile& k : keys_) {
    if (k.role == needed) return SignEvent(event, k);
  }
  std::string have;
  for (const KeyFile& k : keys_)
    have += fmt::format("{}{}", have.empty() ? "" : ", ", RoleName(k.role));
  return Fail(Error::InvalidArgument(
      fmt::format("no --key with role {} to sign this {} event (the keys given are {}); nothing "
                  "was signed: add the {} key with --key",
                  RoleName(needed), EventTypeName(type), have, RoleName(needed))));
}

}  // namespace g60
