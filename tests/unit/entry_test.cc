// Byte-level tests of the entry layout (ledger/entry.h) and its hash. The golden bytes
// and hash were computed independently (Python's struct and hashlib), not by this code.
#include <catch2/catch.hpp>

#include "ledger/bytes.h"
#include "ledger/entry.h"

using namespace g60;

namespace {
Hash Filled(unsigned char c) {
  Hash h;
  h.fill(c);
  return h;
}
constexpr const char* kGoldenEntryHex =
    "4736304501000000000000030000000000000005"
    "1111111111111111111111111111111111111111111111111111111111111111"
    "0000000a68656c6c6f20626f6479";
constexpr const char* kGoldenHash =
    "e711b954204e477b6845b2cca044286bbbfb8bab4a18e4f8c68eeea684f84afb";
}  // namespace

TEST_CASE("entry bytes follow the documented layout", "[entry]") {
  std::string e = EncodeEntry(3, 5, Filled(0x11), "hello body");
  CHECK(HexEncode(e) == kGoldenEntryHex);
  CHECK(e.size() == kEntryHeaderSize + 10);
  CHECK(HexEncode(AsBytes(EntryHash(e))) == kGoldenHash);
}

TEST_CASE("entry hash is SHA-256 of 0x00 and the bytes", "[entry]") {
  CHECK(HexEncode(AsBytes(Sha256("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string e = EncodeEntry(0, 0, Hash{}, "x");
  CHECK(EntryHash(e) == Sha256(std::string(1, '\0') + e));
}

TEST_CASE("entry header decodes and every damaged field is named", "[entry]") {
  std::string e = EncodeEntry(3, 5, Filled(0x11), "hello body");
  auto h = DecodeEntryHeader(e);
  REQUIRE(h.has_value());
  CHECK(h->partition == 3);
  CHECK(h->sequence == 5);
  CHECK(h->prev_hash == Filled(0x11));
  CHECK(h->body_size == 10);

  auto damaged = [&](size_t pos, char value) {
    std::string d = e;
    d[pos] = value;
    return DecodeEntryHeader(d);
  };
  CHECK_THAT(damaged(0, 'X').error().message(), Catch::Contains("magic"));
  CHECK_THAT(damaged(4, 2).error().message(), Catch::Contains("version"));
  for (size_t pos : {5u, 6u, 7u})
    CHECK_THAT(damaged(pos, 1).error().message(), Catch::Contains("reserved"));
  CHECK_THAT(damaged(55, 11).error().message(), Catch::Contains("length"));
  CHECK_THAT(DecodeEntryHeader(e.substr(0, 30)).error().message(), Catch::Contains("shorter"));
  CHECK_THAT(DecodeEntryHeader(e + "!").error().message(), Catch::Contains("length"));
  CHECK(damaged(0, 'X').error().code() == ErrorCode::kDataLoss);
}

TEST_CASE("every single-byte change changes the entry hash", "[entry]") {
  std::string e = EncodeEntry(1, 2, Filled(0x22), "some body bytes");
  Hash original = EntryHash(e);
  for (size_t i = 0; i < e.size(); ++i) {
    std::string d = e;
    d[i] = static_cast<char>(d[i] ^ 0x01);
    CHECK(EntryHash(d) != original);
  }
}

TEST_CASE("entry keys sort by partition then sequence", "[entry]") {
  CHECK(EntryKey(0, 1) < EntryKey(0, 2));
  CHECK(EntryKey(0, 255) < EntryKey(0, 256));
  CHECK(EntryKey(0, UINT64_MAX) < EntryKey(1, 0));
  CHECK(HexEncode(EntryKey(2, 7)) == "000000020000000000000007");
}
