#include "ops/serve_access.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "ledger/bytes.h"

namespace g60 {

namespace {

constexpr std::string_view kHashPrefix = "sha256:";

bool B64TokenChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t')
      ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string_view ReadRoleName(ReadRole r) {
  return r == ReadRole::kAuditor ? "auditor" : "public";
}

Result<ReadRole> ParseReadRole(std::string_view text, std::string_view what) {
  if (text == "public") return ReadRole::kPublic;
  if (text == "auditor") return ReadRole::kAuditor;
  return Fail(Error::InvalidArgument(
      fmt::format("{} '{}' is not a role: give public (totals and checkpoints) or auditor "
                  "(everything)",
                  what, PrintableBytes(text))));
}

bool ValidTokenName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<TokenTable> TokenTable::Parse(std::string_view text, std::string_view origin) {
  TokenTable table;
  size_t number = 0;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    start = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    auto bad = [&](std::string why) {
      return Fail(Error::InvalidArgument(fmt::format("{} line {}: {}", origin, number, why)));
    };
    if (fields.size() != 3) {
      return bad(fmt::format(
          "expected three fields, NAME ROLE sha256:HEX (e.g. \"alice auditor sha256:…\"), "
          "found {}",
          fields.size()));
    }
    TokenEntry e;
    if (!ValidTokenName(fields[0])) {
      return bad(fmt::format("'{}' is not a token name (1 to 64 of A-Z a-z 0-9 . _ @ -)",
                             PrintableBytes(fields[0])));
    }
    e.name = std::string(fields[0]);
    auto role = ParseReadRole(fields[1], "the role");
    if (!role) return bad(role.error().message());
    e.role = *role;
    std::string_view hash = fields[2];
    auto hex = hash.substr(0, kHashPrefix.size()) == kHashPrefix
                   ? HexDecode(hash.substr(kHashPrefix.size()))
                   : Result<std::string>(Fail(Error::InvalidArgument("")));
    if (!hex || hex->size() != e.sha256.size()) {
      return bad(
          "the third field must be sha256: and the 64 hexadecimal digits of the token's SHA-256 "
          "(the file holds hashes, never tokens; `g60ledger token` prints the line)");
    }
    std::copy(hex->begin(), hex->end(), e.sha256.begin());
    for (const auto& other : table.entries_) {
      if (other.name == e.name) return bad(fmt::format("the name {} is used twice", e.name));
      if (other.sha256 == e.sha256) {
        return bad(fmt::format("this token is already {}'s; each holder needs a token of their own",
                               other.name));
      }
    }
    table.entries_.push_back(std::move(e));
  }
  if (table.entries_.empty()) {
    return Fail(Error::InvalidArgument(fmt::format(
        "{} holds no token: every API request would be refused; add a line with `g60ledger "
        "token`",
        origin)));
  }
  return table;
}

Status CheckTokensFileMode(const std::string& path, std::vector<std::string>* warnings) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Fail(Error::NotFound(fmt::format("cannot read the tokens file {}", path)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Fail(Error::InvalidArgument(fmt::format("the tokens file {} is not a file", path)));
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return Fail(Error::InvalidArgument(fmt::format(
        "the tokens file {} may be written by {}: whoever can add a line can grant themselves "
        "a role; make it writable by its owner only (chmod go-w {})",
        path, (st.st_mode & S_IWOTH) ? "anyone" : "its group", path)));
  }
  if ((st.st_mode & S_IROTH) && warnings) {
    warnings->push_back(fmt::format(
        "the tokens file {} may be read by anyone; it holds hashes only, but chmod o-r {} keeps "
        "even the names of the holders private",
        path, path));
  }
  return {};
}

Result<TokenTable> TokenTable::Load(const std::string& path, std::vector<std::string>* warnings) {
  G60_TRY(CheckTokensFileMode(path, warnings));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound(fmt::format("cannot read the tokens file {}", path)));
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

const TokenEntry* TokenTable::Find(std::string_view token) const {
  Hash h = Sha256(token);
  const TokenEntry* found = nullptr;
  for (const auto& e : entries_) {
    // Every entry is compared; the result is kept without a branch on the secret data.
    bool same = sodium_memcmp(h.data(), e.sha256.data(), h.size()) == 0;
    found = same ? &e : found;
  }
  return found;
}

std::string NewBearerToken() {
  CryptoInit();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, bytes, sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(bytes, sizeof bytes);
  return out;
}

std::string TokenFileLine(std::string_view name, ReadRole role, std::string_view token) {
  return fmt::format("{} {} {}{}", name, ReadRoleName(role), kHashPrefix,
                     HexEncode(AsBytes(Sha256(token))));
}

Result<std::optional<std::string>> BearerToken(std::string_view authorization) {
  size_t sp = authorization.find(' ');
  std::string_view scheme = authorization.substr(0, sp);
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  if (lower(scheme) != "bearer") return std::optional<std::string>{};
  std::string_view rest = sp == std::string_view::npos ? "" : authorization.substr(sp);
  while (!rest.empty() && rest.front() == ' ')
    rest.remove_prefix(1);
  size_t end = 0;
  while (end < rest.size() && B64TokenChar(rest[end]))
    ++end;
  size_t pad = end;
  while (pad < rest.size() && rest[pad] == '=')
    ++pad;
  if (end == 0 || pad != rest.size()) {
    return Fail(Error::InvalidArgument(
        "the Authorization header is not \"Bearer <token>\" (RFC 6750 §2.1): the token is "
        "missing or holds characters a token does not have"));
  }
  return std::optional<std::string>(std::string(rest));
}

}  // namespace g60
