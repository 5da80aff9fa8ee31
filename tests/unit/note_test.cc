// C2SP signed notes and checkpoints. The golden note and key are the example of the Go
// implementation's documentation (golang.org/x/mod/sumdb/note), checked independently
// with PyNaCl before they were written here.
#include <catch2/catch.hpp>

#include "ledger/bytes.h"
#include "ledger/note.h"
#include "support.h"

using namespace g60;
using namespace g60::note;

namespace {
constexpr const char* kGoVerifierKey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const std::string kGoText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
const std::string kGoNote =
    kGoText +
    "\n\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
}  // namespace

TEST_CASE("a published Ed25519 signed note opens, with its key hash derived as C2SP says",
          "[note]") {
  auto v = ParseVerifierKey(kGoVerifierKey);
  REQUIRE(v.has_value());
  CHECK(HexEncode(KeyHash(v->name, v->public_key)) == "c74f20a3");
  CHECK(VerifierKey(*v) == kGoVerifierKey);
  auto text = Open(kGoNote, *v);
  REQUIRE(text.has_value());
  CHECK(*text == kGoText);
}

TEST_CASE("a damaged note or a wrong key is refused", "[note]") {
  auto v = *ParseVerifierKey(kGoVerifierKey);
  std::string changed_text = kGoNote;
  changed_text[3] = 'X';
  CHECK_THAT(Open(changed_text, v).error().message(), Catch::Contains("does not verify"));
  std::string changed_sig = kGoNote;
  changed_sig[changed_sig.size() - 10] = changed_sig[changed_sig.size() - 10] == 'A' ? 'B' : 'A';
  CHECK_FALSE(Open(changed_sig, v).has_value());
  CHECK_FALSE(Open(kGoText, v).has_value());  // no signature block
  Verifier other{"PeterNeumann", g60::testing::Keys().admin.public_key};
  CHECK_THAT(Open(kGoNote, other).error().message(), Catch::Contains("no signature by"));
  CHECK_FALSE(ParseVerifierKey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                  .has_value());
}

TEST_CASE("notes signed here open with the verifier key, and checkpoints round-trip", "[note]") {
  const KeyFile& k = g60::testing::Keys().admin;
  Checkpoint c{"g60ledger.example/songjiang/g60.events/3", 12345, Sha256("root"), {}};
  std::string text = FormatCheckpoint(c);
  CHECK(text ==
        "g60ledger.example/songjiang/g60.events/3\n12345\n" + Base64Encode(AsBytes(c.root)) + "\n");
  auto signed_note = Sign(text, "g60ledger.example/songjiang", k.secret_key);
  REQUIRE(signed_note.has_value());
  CHECK_THAT(*signed_note, Catch::StartsWith(text + "\n\xE2\x80\x94 g60ledger.example/songjiang "));
  Verifier v{"g60ledger.example/songjiang", k.public_key};
  auto opened = Open(*signed_note, *ParseVerifierKey(VerifierKey(v)));
  REQUIRE(opened.has_value());
  auto parsed = ParseCheckpoint(*opened);
  REQUIRE(parsed.has_value());
  CHECK(parsed->origin == c.origin);
  CHECK(parsed->size == 12345);
  CHECK(parsed->root == c.root);
  CHECK_FALSE(Sign("no newline", "n", k.secret_key).has_value());
  CHECK_FALSE(Sign("a\n\nb\n", "n", k.secret_key).has_value());
  CHECK_FALSE(Sign(text, "has space", k.secret_key).has_value());
  CHECK_FALSE(ParseCheckpoint("o\n012\n" + Base64Encode(AsBytes(c.root)) + "\n").has_value());
  CHECK_FALSE(ParseCheckpoint("o\n18446744073709551616\n" + Base64Encode(AsBytes(c.root)) + "\n")
                  .has_value());
  CHECK_FALSE(ParseCheckpoint("o\n12\nAAAA\n").has_value());
  CHECK_FALSE(ParseCheckpoint("o\n12\n").has_value());
}
