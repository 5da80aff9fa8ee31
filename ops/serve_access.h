// Who may read what through `g60ledger serve` (docs/queries.md, "Securing a
// deployment"): two read roles, and the bearer tokens (RFC 6750) that carry them.
//
// Roles, from least to most:
//   public   the ledger's totals and its signed evidence: /api/status, /api/programmes,
//            /api/checkpoints (the history too) and /api/consistency. Nothing that names
//            an applicant or an event.
//   auditor  everything: histories, payments, rejections, overlaps, outstanding stages,
//            clawbacks, proof bundles and traces.
//
// A tokens file holds one token per line, as its SHA-256, never the token itself, so the
// file grants nothing to whoever reads it; the token is shown once, by `g60ledger token`.
//
//   # name       role      SHA-256 of the token
//   alice        auditor   sha256:0b9c2625dc21ef05f6ad4ddf47c5f203837aa32c...
//
// Fields are separated by spaces or tabs; '#' starts a comment line; blank lines are
// ignored. A name is 1..64 of A-Z a-z 0-9 . _ @ - and is what logs show; names and
// hashes are unique in a file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"

namespace g60 {

enum class ReadRole { kPublic = 0, kAuditor = 1 };

std::string_view ReadRoleName(ReadRole r);  // "public", "auditor"
// Parses "public" or "auditor"; InvalidArgument naming `what` and the choices otherwise.
Result<ReadRole> ParseReadRole(std::string_view text, std::string_view what);

struct TokenEntry {
  std::string name;
  ReadRole role = ReadRole::kPublic;
  Hash sha256{};  // SHA-256 of the token's bytes
};

class TokenTable {
 public:
  // Reads a tokens file. Refused when group or others may write it (whoever can add a
  // line can grant themselves a role) or when a line breaks the format (named by its
  // number). A file others may read is accepted, with a warning: it holds hashes only.
  static Result<TokenTable> Load(const std::string& path, std::vector<std::string>* warnings);
  static Result<TokenTable> Parse(std::string_view text, std::string_view origin);

  // The entry of `token`, or null. SHA-256 of the token is compared with every entry's
  // hash in constant time (sodium_memcmp), and every entry is compared, so neither the
  // time taken nor anything else tells which entry, or how much of one, matched.
  const TokenEntry* Find(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
};

// Refuses a tokens file that group or others may write (whoever can add a line can grant
// themselves a role), or that is not a regular file; warns when others may read it.
Status CheckTokensFileMode(const std::string& path, std::vector<std::string>* warnings);

// A new bearer token: 32 bytes from libsodium's CSPRNG, base64url without padding
// (43 characters of RFC 6750's b64token alphabet).
std::string NewBearerToken();
// The line of a tokens file that grants `role` to `token` under `name`.
std::string TokenFileLine(std::string_view name, ReadRole role, std::string_view token);
// Whether `name` may name a token (1..64 of A-Z a-z 0-9 . _ @ -).
bool ValidTokenName(std::string_view name);

// The credentials of an Authorization header value (RFC 9110 §11.6.2) that uses the
// Bearer scheme (RFC 6750 §2.1: "Bearer" 1*SP b64token, the scheme in any case).
// nullopt for another scheme; InvalidArgument when it is Bearer but malformed.
Result<std::optional<std::string>> BearerToken(std::string_view authorization);

}  // namespace g60
