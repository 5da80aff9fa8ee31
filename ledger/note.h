// C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the transparency-log
// checkpoint they carry (c2sp.org/tlog-checkpoint): the formats auditors' tools already
// read, and the ledger's signed checkpoints (checkpoint.h).
//
// A note is its text (UTF-8, ending in a newline), an empty line, and one or more
// signature lines "— <key name> <base64(key ID (4 bytes) || signature (64 bytes))>\n".
// The Ed25519 key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
//
// Reading follows signed-note to the letter, and tests/vectors/signed-notes.json holds
// the cases every verifier of the project (this one, tests/tools/verify_bundle.py) runs:
//   - the whole note is UTF-8 with no ASCII control character but newline: a carriage
//     return is refused, never normalised (the signature covers LF-only text);
//   - the text runs to the note's last empty line; after it, 1 to kSignatureLinesMax
//     signature lines, the last ending in a newline; any other line refuses the note;
//   - key names are non-empty, with no Unicode space and no '+'; base64 is RFC 4648 §4,
//     padded and canonical (§3.5 lets a decoder refuse non-zero padding bits; Go's
//     note.Open takes them), of at least 5 bytes;
//   - a line whose key name and key ID are a known key's is verified, every one of them,
//     duplicates included ("MUST verify"), and one that fails refuses the note (the
//     spec's SHOULD; Go's note.Open instead skips a known key's second line unverified);
//   - a line of an unknown key is ignored; at least one known key's must verify.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"

namespace g60::note {

inline constexpr unsigned char kAlgEd25519 = 0x01;
// Signature lines a note may carry: Go's note.Open limit. signed-note: verifiers SHOULD
// limit them and MUST accept at least 16. It bounds the Ed25519 checks one note can cost.
inline constexpr size_t kSignatureLinesMax = 100;
static_assert(kSignatureLinesMax >= 16, "c2sp.org/signed-note: MUST accept at least 16");

// Why a note was refused: the problems of tests/vectors/signed-notes.json. A note with
// several faults is refused for the first, in this order.
enum class Problem : uint8_t {
  kNotUtf8,                 // signed-note: notes MUST be valid UTF-8
  kControlCharacter,        // MUST NOT contain ASCII control characters but newline (CR too)
  kNoSignatureBlock,        // no empty line, nothing after it, or no final newline
  kTooManySignatures,       // more than kSignatureLinesMax signature lines
  kMalformedSignatureLine,  // a line after the last empty line that is not a signature line
  kBadSignature,            // a known key's signature does not verify
  kNoKnownSignature,        // no signature by a known key
  kCheckpointText,          // the text is not a tlog-checkpoint (checkpoint.h's OpenCheckpoint)
  kWrongOrigin,             // a checkpoint of another log than the one expected
};
// The vectors' name of a problem: "not_utf8", "control_character", ...
const char* ProblemName(Problem p);

// A refusal: the problem, and a message for the person who handed us the note.
struct Refusal {
  Problem problem;
  std::string message;
  Error ToError() const { return Error::InvalidArgument(message); }
};
template <typename T>
using Checked = std::expected<T, Refusal>;

// The 4-byte key ID of an Ed25519 key named `name`.
std::string KeyHash(std::string_view name, std::string_view public_key);

struct Verifier {
  std::string name;
  std::string public_key;  // 32 bytes
};
// "<name>+<key ID, 8 lowercase hex digits>+<base64(0x01 || public key)>", the verifier key
// text of Go's note package.
std::string VerifierKey(const Verifier& v);
Result<Verifier> ParseVerifierKey(std::string_view text);

// Signs `text` (non-empty, UTF-8, no control character but newline, ending with a newline,
// no empty line) as `name` with a 64-byte libsodium secret key.
Result<std::string> Sign(std::string_view text, std::string_view name, std::string_view secret_key);

struct Opened {
  std::string text;                      // up to and with the newline before the last empty line
  std::vector<std::string> verified_by;  // names of the known keys whose signature verified,
                                         // in the order of their first signature line
};
// Opens a note with the keys the caller trusts (signed-note, "Signatures").
Checked<Opened> OpenNote(std::string_view note, std::span<const Verifier> known);
// The same with one known key, for callers that only say what is wrong.
Result<std::string> Open(std::string_view note, const Verifier& verifier);
// A note's text as the format delimits it, every signature line parsed, none verified:
// for a note the ledger stored itself and checks otherwise (verify.cc), never for one
// handed to us.
Checked<std::string> UnverifiedText(std::string_view note);

// A checkpoint (c2sp.org/tlog-checkpoint): origin, tree size, root hash, and optional
// extension lines, which the ledger never writes and readers keep but do not interpret.
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;
};
std::string FormatCheckpoint(const Checkpoint& c);
// Reads a note's text as a checkpoint: at least three lines; a non-empty origin; the tree
// size in ASCII decimal without leading zeros ("0" for the empty tree) that fits 64 bits;
// the canonical base64 of a 32-byte RFC 6962 root hash; extension lines non-empty.
Result<Checkpoint> ParseCheckpoint(std::string_view text);

}  // namespace g60::note
