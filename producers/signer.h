// Signing events. A Signer holds one or more secret keys and picks, for each event, the
// key whose role may sign it (schemas/events.proto, Role; ledger/rules.h RequiredRole).
// A key whose file names another role is not used for an event that role may not sign:
// the ledger would reject it as ROLE_NOT_ALLOWED or LEVEL_MISMATCH. The role in a key
// file is its holder's intent; only a KeyGrant on the record makes it so, and a key file
// without a role signs whatever it is given.
#pragma once

#include <string>
#include <vector>

#include "ledger/status.h"
#include "producers/keyfile.h"
#include "schemas/events.pb.h"

namespace g60 {

// Serialises `event` once and signs those bytes; returns the SignedEvent's bytes.
std::string SignEvent(const v1::Event& event, const KeyFile& key);
// Signs already-serialised event bytes (the bytes are kept exactly as given).
v1::SignedEvent SignEventBytes(std::string event_bytes, const KeyFile& key);

class Signer {
 public:
  // any_role: sign with the only key whatever its role (produce --send-rejected).
  explicit Signer(std::vector<KeyFile> keys, bool any_role = false)
      : keys_(std::move(keys)), any_role_(any_role) {}
  // Returns the serialised SignedEvent, or an error naming the role that is missing.
  Result<std::string> Sign(const v1::Event& event) const;

 private:
  std::vector<KeyFile> keys_;
  bool any_role_ = false;
};

}  // namespace g60
