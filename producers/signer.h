// Signing events. A Signer holds one or more secret keys and picks, for each event, the
// key whose role may sign it (with a single key, that key signs everything: the ledger
// decides what it accepts).
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
  explicit Signer(std::vector<KeyFile> keys) : keys_(std::move(keys)) {}
  // Returns the serialised SignedEvent, or an error naming the role that is missing.
  Result<std::string> Sign(const v1::Event& event) const;

 private:
  std::vector<KeyFile> keys_;
};

}  // namespace g60
