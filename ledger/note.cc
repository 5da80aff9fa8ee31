#include "ledger/note.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "ledger/bytes.h"

namespace g60::note {

namespace {

constexpr std::string_view kDash = "\xE2\x80\x94 ";  // U+2014 EM DASH, then a space
constexpr size_t kKeyIdSize = 4;
constexpr size_t kShownBytesMax = 64;  // of a hostile name quoted in a message

Refusal Refuse(Problem p, std::string message) {
  return Refusal{p, std::move(message)};
}

// The length of the UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when none starts there. Sets *cp to it.
size_t Utf8Sequence(std::string_view s, size_t i, char32_t* cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t n = 0;
  char32_t min = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2, min = 0x80, *cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3, min = 0x800, *cp = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4, min = 0x10000, *cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return n;
}

// Unicode's White_Space property (what Go's unicode.IsSpace tests).
bool IsUnicodeSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Valid UTF-8 quoted for a message, cut at a character boundary.
std::string Quoted(std::string_view s) {
  if (s.size() <= kShownBytesMax) return fmt::format("\"{}\"", s);
  size_t cut = kShownBytesMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  return fmt::format("\"{}…\" ({} bytes)", s.substr(0, cut), s.size());
}

// Why `name` (valid UTF-8) cannot be a key name, or nullopt (signed-note: "Key names MUST
// be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters").
std::optional<std::string> NameProblem(std::string_view name) {
  if (name.empty()) return "its key name is empty";
  for (size_t i = 0; i < name.size();) {
    char32_t c = 0;
    size_t n = Utf8Sequence(name, i, &c);
    if (n == 0 || c < 0x20) return fmt::format("its key name {} is not text", Quoted(name));
    if (c == '+') return fmt::format("its key name {} contains '+'", Quoted(name));
    if (IsUnicodeSpace(c)) {
      return fmt::format("its key name {} contains a space character (U+{:04X})", Quoted(name),
                         static_cast<uint32_t>(c));
    }
    i += n;
  }
  return std::nullopt;
}

bool ValidName(std::string_view name) {
  return !NameProblem(name).has_value();
}

// The whole note: UTF-8, and no ASCII control character but the newline.
std::optional<Refusal> CheckCharacters(std::string_view note) {
  for (size_t i = 0; i < note.size();) {
    char32_t c = 0;
    size_t n = Utf8Sequence(note, i, &c);
    if (n == 0) {
      return Refuse(Problem::kNotUtf8,
                    fmt::format("the note is not UTF-8 text: byte {} (0x{:02x}) does not begin a "
                                "valid UTF-8 character (c2sp.org/signed-note)",
                                i, static_cast<unsigned char>(note[i])));
    }
    i += n;
  }
  for (size_t i = 0; i < note.size(); ++i) {
    auto c = static_cast<unsigned char>(note[i]);
    if (c >= 0x20 || c == '\n') continue;
    if (c == '\r') {
      return Refuse(Problem::kControlCharacter,
                    fmt::format("the note has a carriage return (CR) at byte {}: a signed note "
                                "ends its lines with a newline (LF) alone, and a note with Windows "
                                "line ends (CRLF) is refused, not repaired, because its signatures "
                                "cover the LF text (c2sp.org/signed-note)",
                                i));
    }
    return Refuse(Problem::kControlCharacter,
                  fmt::format("the note has the control character 0x{:02x} at byte {}; a signed "
                              "note holds no ASCII control character but the newline "
                              "(c2sp.org/signed-note)",
                              c, i));
  }
  return std::nullopt;
}

struct SignatureLine {
  size_t number = 0;  // 1 for the first signature line
  std::string_view name;
  std::string key_id;     // 4 bytes
  std::string signature;  // the rest
};

Checked<SignatureLine> ParseLine(std::string_view line, size_t number) {
  auto malformed = [&](const std::string& why) {
    return std::unexpected(Refuse(
        Problem::kMalformedSignatureLine,
        fmt::format("signature line {} of the note is not \"— <key name> <base64 signature>\": {} "
                    "(c2sp.org/signed-note)",
                    number, why)));
  };
  if (!line.starts_with(kDash)) {
    return malformed(line.empty() ? "it is empty"
                                  : "it does not begin with an em dash (U+2014) and a space");
  }
  line.remove_prefix(kDash.size());
  size_t sp = line.find(' ');
  SignatureLine out;
  out.number = number;
  out.name = line.substr(0, sp);
  if (auto why = NameProblem(out.name)) return malformed(*why);
  if (sp == std::string_view::npos || sp + 1 == line.size()) {
    return malformed("it has no signature after the key name");
  }
  auto raw = Base64Decode(line.substr(sp + 1));
  if (!raw) {
    return malformed(
        "its signature is not base64 (RFC 4648 standard alphabet, padded, no stray bits, no "
        "spaces)");
  }
  if (raw->size() <= kKeyIdSize) {
    return malformed(fmt::format(
        "its signature is {} bytes, too short for a 4-byte key ID and a signature", raw->size()));
  }
  out.key_id = raw->substr(0, kKeyIdSize);
  out.signature = raw->substr(kKeyIdSize);
  return out;
}

struct Parsed {
  std::string_view text;
  std::vector<SignatureLine> lines;
};

// The note's layout (signed-note, "Format"); no signature is verified here.
Checked<Parsed> Parse(std::string_view note) {
  if (auto bad = CheckCharacters(note)) return std::unexpected(std::move(*bad));
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) {
    return std::unexpected(Refuse(Problem::kNoSignatureBlock,
                                  "the note has no empty line before its signature lines: it is "
                                  "not a signed note (c2sp.org/signed-note)"));
  }
  Parsed p;
  p.text = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) {
    return std::unexpected(
        Refuse(Problem::kNoSignatureBlock,
               "the note has no signature line after its last empty line (c2sp.org/signed-note)"));
  }
  if (sigs.back() != '\n') {
    return std::unexpected(
        Refuse(Problem::kNoSignatureBlock,
               "the note's last line does not end with a newline: the note was cut short or "
               "changed after it was written (c2sp.org/signed-note)"));
  }
  size_t count = static_cast<size_t>(std::count(sigs.begin(), sigs.end(), '\n'));
  if (count > kSignatureLinesMax) {
    return std::unexpected(Refuse(
        Problem::kTooManySignatures,
        fmt::format("the note has {} signature lines; a verifier reads at most {} (a bound on the "
                    "work one note may cost; c2sp.org/signed-note asks verifiers for one)",
                    count, kSignatureLinesMax)));
  }
  for (size_t start = 0, number = 1; start < sigs.size(); ++number) {
    size_t end = sigs.find('\n', start);
    auto line = ParseLine(sigs.substr(start, end - start), number);
    if (!line) return std::unexpected(std::move(line.error()));
    p.lines.push_back(std::move(*line));
    start = end + 1;
  }
  return p;
}

std::string Names(const std::vector<std::string_view>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i)
    out += (i ? ", " : "") + Quoted(names[i]);
  if (names.size() > 5) out += fmt::format(" and {} more", names.size() - 5);
  return out;
}

}  // namespace

const char* ProblemName(Problem p) {
  switch (p) {
    case Problem::kNotUtf8:
      return "not_utf8";
    case Problem::kControlCharacter:
      return "control_character";
    case Problem::kNoSignatureBlock:
      return "no_signature_block";
    case Problem::kTooManySignatures:
      return "too_many_signatures";
    case Problem::kMalformedSignatureLine:
      return "malformed_signature_line";
    case Problem::kBadSignature:
      return "bad_signature";
    case Problem::kNoKnownSignature:
      return "no_known_signature";
    case Problem::kCheckpointText:
      return "checkpoint_text";
    case Problem::kWrongOrigin:
      return "wrong_origin";
  }
  return "unknown";
}

std::string KeyHash(std::string_view name, std::string_view public_key) {
  std::string m(name);
  m.push_back('\n');
  m.push_back(static_cast<char>(kAlgEd25519));
  m.append(public_key);
  return std::string(AsBytes(Sha256(m)).substr(0, kKeyIdSize));
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
    return Fail(Error::InvalidArgument(
        "a verifier key is <name>+<key ID>+<key> (`g60ledger checkpoint --verifier-key`)"));
  }
  Verifier v{std::string(text.substr(0, a)), {}};
  auto key = Base64Decode(text.substr(b + 1));
  if (!ValidName(v.name) || !key || key->size() != 1 + kPublicKeySize ||
      static_cast<unsigned char>((*key)[0]) != kAlgEd25519) {
    return Fail(Error::InvalidArgument(
        "verifier key: the name is empty or has a space, or the key is not an Ed25519 key"));
  }
  v.public_key = key->substr(1);
  if (HexEncode(KeyHash(v.name, v.public_key)) != text.substr(a + 1, b - a - 1)) {
    return Fail(Error::InvalidArgument("verifier key: the key ID does not match the key"));
  }
  return v;
}

Result<std::string> Sign(std::string_view text, std::string_view name,
                         std::string_view secret_key) {
  if (text.empty() || text.back() != '\n' || text.find("\n\n") != std::string_view::npos) {
    return Fail(Error::InvalidArgument("note text must end with a newline and have no blank line"));
  }
  if (auto bad = CheckCharacters(text)) return Fail(bad->ToError());
  if (!ValidName(name))
    return Fail(Error::InvalidArgument("note key name is empty or has a space or '+'"));
  std::string public_key(secret_key.substr(32));
  std::string sig = KeyHash(name, public_key) + SignDetached(secret_key, "", text);
  return fmt::format("{}\n{}{} {}\n", text, kDash, name, Base64Encode(sig));
}

Checked<Opened> OpenNote(std::string_view note, std::span<const Verifier> known) {
  auto parsed = Parse(note);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  std::vector<std::string> known_ids;
  for (const auto& v : known)
    known_ids.push_back(KeyHash(v.name, v.public_key));
  Opened out;
  out.text = std::string(parsed->text);
  std::vector<std::string_view> others;
  for (const SignatureLine& line : parsed->lines) {
    // A key is the pair (name, key ID): a line sharing one of them only is another key's.
    bool matched = false, verified = false;
    for (size_t k = 0; k < known.size(); ++k) {
      if (known[k].name != line.name || known_ids[k] != line.key_id) continue;
      matched = true;
      verified = verified || (line.signature.size() == kSignatureSize &&
                              VerifyDetached(known[k].public_key, line.signature, "", out.text));
    }
    if (!matched) {
      others.push_back(line.name);
      continue;
    }
    if (!verified) {
      return std::unexpected(
          Refuse(Problem::kBadSignature,
                 fmt::format("the note's signature by {} (key ID {}, signature line {}) does not "
                             "verify: the note was altered after it was signed, or was signed by "
                             "another key",
                             line.name, HexEncode(line.key_id), line.number)));
    }
    if (std::find(out.verified_by.begin(), out.verified_by.end(), line.name) ==
        out.verified_by.end()) {
      out.verified_by.emplace_back(line.name);
    }
  }
  if (out.verified_by.empty()) {
    std::vector<std::string_view> wanted;
    for (const auto& v : known)
      wanted.push_back(v.name);
    return std::unexpected(Refuse(
        Problem::kNoKnownSignature,
        fmt::format("the note carries no signature by {}{}; its signature lines are by other "
                    "keys: {}",
                    wanted.empty() ? "a known key" : Names(wanted),
                    known.size() == 1 ? fmt::format(" (key ID {})", HexEncode(known_ids[0])) : "",
                    Names(others))));
  }
  return out;
}

Result<std::string> Open(std::string_view note, const Verifier& verifier) {
  auto opened = OpenNote(note, std::span<const Verifier>(&verifier, 1));
  if (!opened) return Fail(opened.error().ToError());
  return std::move(opened->text);
}

Checked<std::string> UnverifiedText(std::string_view note) {
  auto parsed = Parse(note);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  return std::string(parsed->text);
}

std::string FormatCheckpoint(const Checkpoint& c) {
  std::string out = fmt::format("{}\n{}\n{}\n", c.origin, c.size, Base64Encode(AsBytes(c.root)));
  for (const auto& e : c.extensions)
    out += e + "\n";
  return out;
}

Result<Checkpoint> ParseCheckpoint(std::string_view text) {
  auto bad = [](const std::string& why) {
    return Fail(Error::InvalidArgument(
        fmt::format("the checkpoint's text {} (c2sp.org/tlog-checkpoint)", why)));
  };
  if (text.empty() || text.back() != '\n') return bad("does not end with a newline");
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (lines.size() < 3) {
    return bad(fmt::format("has {} line(s); it needs an origin, a tree size and a root hash",
                           lines.size()));
  }
  Checkpoint c;
  if (lines[0].empty()) return bad("has an empty origin (its first line)");
  c.origin = std::string(lines[0]);
  std::string_view size = lines[1];
  bool decimal =
      !size.empty() && (size == "0" || size[0] != '0') &&
      std::all_of(size.begin(), size.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!decimal) {
    return bad(fmt::format(
        "has the tree size \"{}\", which is not a number in decimal digits without leading zeros",
        PrintableBytes(size)));
  }
  for (char ch : size) {
    if (__builtin_mul_overflow(c.size, uint64_t{10}, &c.size) ||
        __builtin_add_overflow(c.size, static_cast<uint64_t>(ch - '0'), &c.size)) {
      return bad(
          fmt::format("has the tree size {}, which does not fit in 64 bits", PrintableBytes(size)));
    }
  }
  auto root = Base64Decode(lines[2]);
  if (!root || root->size() != c.root.size()) {
    return bad(fmt::format(
        "has the root hash \"{}\", which is not the base64 of a 32-byte SHA-256 hash{}",
        PrintableBytes(lines[2]), root ? fmt::format(" ({} bytes)", root->size()) : ""));
  }
  std::copy(root->begin(), root->end(), c.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return bad(fmt::format("has an empty line {}: extension lines must not be empty", i + 1));
    }
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

}  // namespace g60::note
