// C2SP signed notes and checkpoints. The golden note and key are the example of the Go
// implementation's documentation (golang.org/x/mod/sumdb/note), checked independently
// with PyNaCl before they were written here.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/note.h"
#include "process.h"
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
  CHECK_THAT(Open(changed_text, v).error().message(),
             Catch::Contains("signature by PeterNeumann (key ID c74f20a3, signature line 1) does "
                             "not verify: the note was altered after it was signed"));
  std::string changed_sig = kGoNote;
  changed_sig[changed_sig.size() - 10] = changed_sig[changed_sig.size() - 10] == 'A' ? 'B' : 'A';
  CHECK_FALSE(Open(changed_sig, v).has_value());
  CHECK_FALSE(Open(kGoText, v).has_value());  // no signature block
  Verifier other{"PeterNeumann", g60::testing::Keys().admin.public_key};
  CHECK_THAT(Open(kGoNote, other).error().message(),
             Catch::Contains("no signature by \"PeterNeumann\" (key ID"));
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

namespace {

nlohmann::json SignedNoteVectors() {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/vectors/signed-notes.json",
                   std::ios::binary);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

}  // namespace

TEST_CASE("every case of tests/vectors/signed-notes.json gets its outcome from ledger/note.cc",
          "[note][vectors]") {
  // Written from c2sp.org/signed-note and tlog-checkpoint by tests/vectors/signed-notes.py;
  // tests/tools/verify_bundle.py runs the same file (the next test).
  auto vectors = SignedNoteVectors();
  REQUIRE(vectors["signature_lines_max"] == kSignatureLinesMax);
  const auto& cases = vectors["cases"];
  REQUIRE(cases.size() >= 90);
  std::set<std::string> problems_seen;
  for (const auto& c : cases) {
    INFO("case " << c["tcId"] << ": " << c["comment"].get<std::string>());
    std::string note = c.contains("note") ? c["note"].get<std::string>()
                                          : *HexDecode(c["note_hex"].get<std::string>());
    std::vector<Verifier> known;
    for (const auto& k : c["verifiers"]) {
      auto v = ParseVerifierKey(k.get<std::string>());
      REQUIRE(v.has_value());
      known.push_back(*v);
    }
    const bool accept = c["result"] == "accept";
    if (!accept) problems_seen.insert(c["problem"].get<std::string>());
    if (c.contains("checkpoint")) {
      REQUIRE(known.size() == 1);
      auto partition =
          PartitionOfOrigin(c["checkpoint"]["origin"].get<std::string>(), known[0].name);
      REQUIRE(partition.has_value());
      auto got = OpenCheckpoint(note, known[0], *partition);
      if (accept) {
        if (!got) FAIL(got.error().message);
        CHECK(got->checkpoint.origin == c["checkpoint"]["origin"]);
        CHECK(got->checkpoint.size == c["checkpoint"]["size"].get<uint64_t>());
        CHECK(Base64Encode(AsBytes(got->checkpoint.root)) == c["checkpoint"]["root"]);
      } else {
        REQUIRE_FALSE(got.has_value());
        INFO(got.error().message);
        CHECK(ProblemName(got.error().problem) == c["problem"]);
      }
    } else {
      auto got = OpenNote(note, known);
      if (accept) {
        if (!got) FAIL(got.error().message);
        CHECK(got->text == c["text"]);
        CHECK(got->verified_by == c["verified_by"].get<std::vector<std::string>>());
      } else {
        REQUIRE_FALSE(got.has_value());
        INFO(got.error().message);
        CHECK(ProblemName(got.error().problem) == c["problem"]);
      }
    }
    // The one-key Open (bundles, checkpoint files, the ledger's own notes) agrees.
    if (known.size() == 1) {
      bool note_ok = accept || c["problem"] == "checkpoint_text" || c["problem"] == "wrong_origin";
      CHECK(Open(note, known[0]).has_value() == note_ok);
    }
  }
  // Every problem the vectors name is exercised.
  for (const auto& [name, why] : vectors["problems"].items()) {
    INFO(name);
    CHECK(problems_seen.count(name) == 1);
  }
}

TEST_CASE(
    "tests/tools/verify_bundle.py gives every case of tests/vectors/signed-notes.json its "
    "outcome",
    "[note][vectors][python]") {
  g60::testing::TempDir dir;
  auto r = g60::testing::Run(
      {"/usr/bin/python3", std::string(G60_SOURCE_DIR) + "/tests/tools/signed_notes_test.py"},
      dir / "out");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains(fmt::format("signed_notes_test.py: OK: {} cases",
                                                   SignedNoteVectors()["cases"].size())));
}

TEST_CASE("a note's refusal names what is wrong in an auditor's words", "[note]") {
  auto v = *ParseVerifierKey(kGoVerifierKey);
  std::string crlf = kGoNote;
  for (size_t i = crlf.find('\n'); i != std::string::npos; i = crlf.find('\n', i + 2))
    crlf.insert(i, "\r");
  auto r = OpenNote(crlf, std::span<const Verifier>(&v, 1));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().problem == Problem::kControlCharacter);
  CHECK_THAT(r.error().message, Catch::Contains("carriage return (CR) at byte 56") &&
                                    Catch::Contains("refused, not repaired"));
  r = OpenNote(kGoNote.substr(0, kGoNote.size() - 1), std::span<const Verifier>(&v, 1));
  CHECK_THAT(r.error().message, Catch::Contains("does not end with a newline"));
  r = OpenNote(kGoNote + "\xE2\x80\x94 a+b AAAAAAAA\n", std::span<const Verifier>(&v, 1));
  CHECK_THAT(r.error().message, Catch::Contains("signature line 2") && Catch::Contains("'+'"));
  // The text of a note the ledger stored is read without its signatures being checked.
  auto text = UnverifiedText(kGoNote);
  REQUIRE(text.has_value());
  CHECK(*text == kGoText);
  CHECK(UnverifiedText(crlf).error().problem == Problem::kControlCharacter);
}
