#include "ledger/note.h"

#include <fmt/format.h>

#include "ledger/bytes.h"

namespace g60::note {

namespace {
constexpr std::string_view kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c == '+' || c == 0x7f) return false;
  }
  return true;
}

std::vector<std::string_view> Lines(std::string_view s) {  // s ends with '\n'
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}
}  // namespace

std::string KeyHash(std::string_view name, std::string_view public_key) {
  std::string m(name);
  m.push_back('\n');
  m.push_back(static_cast<char>(kAlgEd25519));
  m.append(public_key);
  return std::string(AsBytes(Sha256(m)).substr(0, 4));
}

std::string VerifierKey(const Verifier& v) {
  std::string key(1, static_cast<char>(kAlgEd25519));
  key += v.public_key;
  return fmt::format("{}+{}+{}", v.name, HexEncode(KeyHash(v.name, v.public_key)),
                     Base64Encode(key));
}

Result<Verifier> ParseVerifierKey(std::string_view text) {
  size_t a = text.find('+');
  size_t b = a == std::string_view::npos ? a : text.find('+', a + 1);
  if (b == std::string_view::npos) {
    return Fail(Error::InvalidArgument("a verifier key is <name>+<hash>+<key>"));
  }
  Verifier v{std::string(text.substr(0, a)), {}};
  auto key = Base64Decode(text.substr(b + 1));
  if (!ValidName(v.name) || !key || key->size() != 33 ||
      static_cast<unsigned char>((*key)[0]) != kAlgEd25519) {
    return Fail(Error::InvalidArgument("verifier key: bad name, or not an Ed25519 key"));
  }
  v.public_key = key->substr(1);
  if (HexEncode(KeyHash(v.name, v.public_key)) != text.substr(a + 1, b - a - 1)) {
    return Fail(Error::InvalidArgument("verifier key: the key hash does not match the key"));
  }
  return v;
}

Result<std::string> Sign(std::string_view text, std::string_view name,
                         std::string_view secret_key) {
  if (text.empty() || text.back() != '\n' || text.find("\n\n") != std::string_view::npos) {
    return Fail(Error::InvalidArgument("note text must end with a newline and have no blank line"));
  }
  if (!ValidName(name))
    return Fail(Error::InvalidArgument("note key name is empty or has a space or '+'"));
  std::string public_key(secret_key.substr(32));
  std::string sig = KeyHash(name, public_key) + SignDetached(secret_key, "", text);
  return fmt::format("{}\n{}{} {}\n", text, kDash, name, Base64Encode(sig));
}

Result<std::string> Open(std::string_view note, const Verifier& verifier) {
  size_t split = note.rfind("\n\n");
  if (note.empty() || note.back() != '\n' || split == std::string_view::npos) {
    return Fail(Error::InvalidArgument("not a signed note: no blank line before the signatures"));
  }
  std::string_view text = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  std::string want = KeyHash(verifier.name, verifier.public_key);
  bool seen = false;
  for (std::string_view line : Lines(sigs)) {
    if (!line.starts_with(kDash)) return Fail(Error::InvalidArgument("malformed signature line"));
    line.remove_prefix(kDash.size());
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos)
      return Fail(Error::InvalidArgument("malformed signature line"));
    auto raw = Base64Decode(line.substr(sp + 1));
    if (!raw || raw->size() < 5) return Fail(Error::InvalidArgument("malformed signature"));
    if (line.substr(0, sp) != verifier.name || raw->substr(0, 4) != want) continue;
    seen = true;
    if (raw->size() == 68 && VerifyDetached(verifier.public_key, raw->substr(4), "", text)) {
      return std::string(text);
    }
  }
  return Fail(Error::InvalidArgument(
      seen ? fmt::format("the signature by {} does not verify", verifier.name)
           : fmt::format("no signature by {} on the note", verifier.name)));
}

std::string FormatCheckpoint(const Checkpoint& c) {
  std::string out = fmt::format("{}\n{}\n{}\n", c.origin, c.size, Base64Encode(AsBytes(c.root)));
  for (const auto& e : c.extensions)
    out += e + "\n";
  return out;
}

Result<Checkpoint> ParseCheckpoint(std::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return Fail(Error::InvalidArgument("checkpoint text must end with a newline"));
  }
  auto lines = Lines(text);
  if (lines.size() < 3)
    return Fail(Error::InvalidArgument("checkpoint needs origin, size and root"));
  Checkpoint c;
  c.origin = std::string(lines[0]);
  if (c.origin.empty()) return Fail(Error::InvalidArgument("checkpoint origin is empty"));
  std::string_view size = lines[1];
  if (size.empty() || size.size() > 20 || (size.size() > 1 && size[0] == '0')) {
    return Fail(
        Error::InvalidArgument("checkpoint size is not a decimal number without leading zeros"));
  }
  for (char ch : size) {
    if (ch < '0' || ch > '9') return Fail(Error::InvalidArgument("checkpoint size is not decimal"));
    if (__builtin_mul_overflow(c.size, uint64_t{10}, &c.size) ||
        __builtin_add_overflow(c.size, static_cast<uint64_t>(ch - '0'), &c.size)) {
      return Fail(Error::InvalidArgument("checkpoint size overflows"));
    }
  }
  auto root = Base64Decode(lines[2]);
  if (!root || root->size() != 32) {
    return Fail(Error::InvalidArgument("checkpoint root is not base64 of 32 bytes"));
  }
  std::copy(root->begin(), root->end(), c.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return Fail(Error::InvalidArgument("checkpoint has an empty line"));
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

}  // namespace g60::note
