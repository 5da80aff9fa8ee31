// C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the transparency-log
// checkpoint they carry (c2sp.org/tlog-checkpoint). These are the formats auditors'
// tools already read; the ledger's signed checkpoints (issue 5) will use them.
//
// A note is its text (UTF-8, ending in a newline), a blank line, and one or more
// signature lines "— <key name> <base64(key hash (4 bytes) || signature (64 bytes))>".
// The Ed25519 key hash is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"

namespace g60::note {

inline constexpr unsigned char kAlgEd25519 = 0x01;

// The 4-byte key hash of an Ed25519 key named `name`.
std::string KeyHash(std::string_view name, std::string_view public_key);

struct Verifier {
  std::string name;
  std::string public_key;  // 32 bytes
};
// "<name>+<hex key hash>+<base64(0x01 || public key)>", the verifier key text.
std::string VerifierKey(const Verifier& v);
Result<Verifier> ParseVerifierKey(std::string_view text);

// Signs `text` (which must end with a newline and contain no blank line) as `name`.
Result<std::string> Sign(std::string_view text, std::string_view name, std::string_view secret_key);

// Returns the note's text when it carries a valid signature by `verifier`; an error
// naming what is wrong otherwise (malformed note, no signature by that key, bad signature).
Result<std::string> Open(std::string_view note, const Verifier& verifier);

// A checkpoint: the origin line, the tree size and the root hash (plus extension lines).
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;
};
std::string FormatCheckpoint(const Checkpoint& c);
Result<Checkpoint> ParseCheckpoint(std::string_view text);

}  // namespace g60::note
