// Small helpers for bytes: hex and base64 text, big-endian integers, checked money sums.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ledger/status.h"

namespace g60 {

std::string HexEncode(std::string_view bytes);

// Bytes from outside (a Kafka key, say) made safe to put in a sentence and in a proto3
// string field, which must be valid UTF-8: printable ASCII stays, a backslash or quote is
// escaped, any other byte becomes \xHH; past `max_bytes` of input the rest is cut and
// "...(N bytes)" says how long it was.
std::string PrintableBytes(std::string_view bytes, size_t max_bytes = 64);
Result<std::string> HexDecode(std::string_view hex);

// Is `text` structurally valid UTF-8 (RFC 3629), as protobuf requires of a proto3 string
// field before it will parse one? Uses protobuf's own validator, so the answer is exactly
// the one the parser will give.
bool ValidUtf8(std::string_view text);
// `text` unchanged when it is valid UTF-8; otherwise its valid runs kept and every byte
// outside them written as \xHH, so that it can go into a proto3 string field and be read
// back. For text that is normally UTF-8 already (sentences, ids from a parsed event).
std::string Utf8OrEscaped(std::string text);

// Standard base64 with padding (RFC 4648 section 4), as used by C2SP notes and
// protobuf's JSON mapping of bytes.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

void PutU32BE(std::string& out, uint32_t v);
void PutU64BE(std::string& out, uint64_t v);
uint32_t GetU32BE(const unsigned char* p);
uint64_t GetU64BE(const unsigned char* p);

// Money is int64 fen; a sum that would overflow is an error, never a wrap.
std::optional<int64_t> CheckedAdd(int64_t a, int64_t b);
std::optional<int64_t> CheckedSub(int64_t a, int64_t b);

// "12,345.67 CNY" for people; fen in, exact.
std::string FormatFen(int64_t fen);

}  // namespace g60
