#include "ledger/bytes.h"

#include <google/protobuf/stubs/common.h>

#include <sodium.h>

#include <string>

namespace g60 {

std::string PrintableBytes(std::string_view bytes, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max_bytes; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (bytes.size() > max_bytes) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

bool ValidUtf8(std::string_view text) {
  return google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                             static_cast<int>(text.size()));
}

std::string Utf8OrEscaped(std::string text) {
  if (ValidUtf8(text)) return text;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto valid = static_cast<size_t>(google::protobuf::internal::UTF8SpnStructurallyValid(
        google::protobuf::StringPiece(rest.data(), rest.size())));
    out.append(rest.substr(0, valid));
    rest.remove_prefix(valid);
    if (rest.empty()) break;
    const auto c = static_cast<unsigned char>(rest.front());
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
    rest.remove_prefix(1);
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return Fail(Error::InvalidArgument("hex text has an odd length"));
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return Fail(Error::InvalidArgument("hex text has a non-hex character"));
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // drop the terminating NUL
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  // libsodium 1.0.18 (Debian 12) decodes some bytes outside the alphabet, 0x90 among
  // them, as if they were letters (found by the signed-note fuzzer), so one value would
  // have several encodings and verifiers that follow RFC 4648 would disagree with ours.
  // The alphabet, the padding and the length are checked here first; libsodium then
  // refuses non-zero padding bits, so exactly one text decodes to each value.
  const size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  if (text.size() % 4 != 0 ||
      text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") <
          text.size() - padding) {
    return Fail(Error::InvalidArgument("not valid base64 (standard alphabet, padded)"));
  }
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return Fail(Error::InvalidArgument("not valid base64 (standard alphabet, padded)"));
  }
  out.resize(len);
  return out;
}

void PutU32BE(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void PutU64BE(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t GetU32BE(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t GetU64BE(const unsigned char* p) {
  return (uint64_t{GetU32BE(p)} << 32) | GetU32BE(p + 4);
}

std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<int64_t> CheckedSub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::string FormatFen(int64_t fen) {
  bool negative = fen < 0;
  // Work in unsigned to format INT64_MIN exactly.
  uint64_t v = negative ? ~static_cast<uint64_t>(fen) + 1 : static_cast<uint64_t>(fen);
  std::string yuan = std::to_string(v / 100);
  std::string grouped;
  for (size_t i = 0; i < yuan.size(); ++i) {
    if (i > 0 && (yuan.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(yuan[i]);
  }
  unsigned cents = static_cast<unsigned>(v % 100);
  std::string out = negative ? "-" : "";
  out += grouped + "." + (cents < 10 ? "0" : "") + std::to_string(cents) + " CNY";
  return out;
}

}  // namespace g60
