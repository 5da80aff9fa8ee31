#include <catch2/catch.hpp>

#include "ledger/bytes.h"

using namespace g60;

TEST_CASE("hex and base64 round-trip and reject bad text", "[bytes]") {
  std::string raw("\x00\x01\xfe\xff", 4);
  CHECK(HexEncode(raw) == "0001feff");
  CHECK(*HexDecode("0001FEff") == raw);
  CHECK_FALSE(HexDecode("abc").has_value());
  CHECK_FALSE(HexDecode("zz").has_value());
  CHECK(Base64Encode("hello") == "aGVsbG8=");
  CHECK(*Base64Decode("aGVsbG8=") == "hello");
  CHECK_FALSE(Base64Decode("aGVsbG8").has_value());   // unpadded
  CHECK_FALSE(Base64Decode("aGVs!G8=").has_value());  // bad character
}

TEST_CASE("bytes from outside are printed escaped and cut", "[bytes]") {
  CHECK(PrintableBytes("91310117MA1J000001") == "91310117MA1J000001");
  CHECK(PrintableBytes(std::string("\xff"
                                   "\x00"
                                   "a\"\\",
                                   5)) == "\\xff\\x00a\\\"\\\\");
  CHECK(PrintableBytes(std::string(100, 'k'), 4) == "kkkk...(100 bytes)");
  CHECK(PrintableBytes("") == "");
}

TEST_CASE("money sums never wrap", "[bytes][money]") {
  CHECK(CheckedAdd(INT64_MAX - 1, 1) == INT64_MAX);
  CHECK_FALSE(CheckedAdd(INT64_MAX, 1).has_value());
  CHECK_FALSE(CheckedSub(INT64_MIN, 1).has_value());
  CHECK(FormatFen(0) == "0.00 CNY");
  CHECK(FormatFen(5) == "0.05 CNY");
  CHECK(FormatFen(123456789) == "1,234,567.89 CNY");
  CHECK(FormatFen(-100) == "-1.00 CNY");
  CHECK(FormatFen(INT64_MIN) == "-92,233,720,368,547,758.08 CNY");
}

TEST_CASE("text that is not UTF-8 is escaped byte by byte, valid runs kept", "[bytes]") {
  CHECK(ValidUtf8("资助 ok"));
  CHECK_FALSE(ValidUtf8(std::string("\xff\xfe", 2)));
  CHECK_FALSE(ValidUtf8(std::string("\xe4\xb8", 2)));  // a character cut short
  CHECK_FALSE(ValidUtf8("\xc0\xaf"));                  // an over-long '/'
  CHECK(Utf8OrEscaped("资助 ok") == "资助 ok");
  CHECK(Utf8OrEscaped(std::string("a\xff\xfe资", 6)) == "a\\xff\\xfe资");
  CHECK(Utf8OrEscaped(std::string("\xe4\xb8", 2)) == "\\xe4\\xb8");
  CHECK(ValidUtf8(Utf8OrEscaped(std::string("\xed\xa0\x80z", 4))));
}

TEST_CASE("base64 has one text per value: RFC 4648 alphabet, padding, zero pad bits", "[bytes]") {
  CHECK(*Base64Decode("WmE=") == "Za");
  CHECK(*Base64Decode("") == "");
  // Found by the signed-note fuzzer: libsodium 1.0.18 took the byte 0x90 for a letter.
  CHECK_FALSE(Base64Decode("W\x90"
                           "E=")
                  .has_value());
  CHECK_FALSE(Base64Decode("WmF=").has_value());   // pad bits not zero: a second text for "Za"
  CHECK_FALSE(Base64Decode("WmE").has_value());    // unpadded
  CHECK_FALSE(Base64Decode("Wm=E").has_value());   // padding inside
  CHECK_FALSE(Base64Decode("Wm E=").has_value());  // whitespace
  CHECK_FALSE(Base64Decode("Wm-_").has_value());   // the URL alphabet
}
