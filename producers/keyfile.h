// Key files. `g60ledger keygen` writes a secret key file (mode 0600, never printed) and
// a public key file beside it (FILE.pub). Both are one JSON object:
//
//   secret: {"format":"g60ledger-secret-key/1","role":"treasury","key_id":"<32 hex>",
//            "public_key":"<base64 32 bytes>","secret_key":"<base64 64 bytes>"}
//   public: {"format":"g60ledger-public-key/1","role":"treasury","key_id":"<32 hex>",
//            "public_key":"<base64 32 bytes>"}
//
// The role in a key file is what its holder intends to sign; the ledger trusts only the
// role granted on the record by a KeyGrant event.
#pragma once

#include <string>

#include "ledger/status.h"
#include "schemas/events.pb.h"

namespace g60 {

struct KeyFile {
  v1::Role role = v1::ROLE_UNSPECIFIED;
  std::string key_id;
  std::string public_key;  // raw 32 bytes
  std::string secret_key;  // raw 64 bytes; empty in a public key file
};

// Generates a key pair and writes PATH (0600, refusing to overwrite) and PATH.pub.
Result<KeyFile> GenerateKeyFile(const std::string& path, v1::Role role);
// Writes an existing key (e.g. one derived from a seed) the same way.
Status WriteKeyFile(const std::string& path, const KeyFile& key);
// Reads a secret key file; refuses one that others can read.
Result<KeyFile> ReadSecretKeyFile(const std::string& path);
// Reads a public key file (or the public half of a secret key file).
Result<KeyFile> ReadPublicKeyFile(const std::string& path);

}  // namespace g60
