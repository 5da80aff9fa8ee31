// Signed notes and checkpoints (C2SP signed-note and tlog-checkpoint; ledger/note.h) as
// an auditor's file may hold them: note::Open with the ledger's key, ParseCheckpoint on
// the text, ParseVerifierKey on the same bytes. Properties: never crashes; a note that
// opens has text that ends in a newline; a checkpoint that parses formats back to the
// same text.
#include <cstdint>

#include "fuzz_support.h"
#include "ledger/crypto.h"
#include "ledger/note.h"
#include "support.h"

using namespace g60;

namespace {
const std::string kName = "g60ledger.test/checkpoints";
const KeyFile& Key() {
  return testing::Keys().admin;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  note::Checkpoint c;
  c.origin = kName + "/0";
  c.size = 12;
  c.root.fill(0x5a);
  std::string text = note::FormatCheckpoint(c);
  auto signed_note = note::Sign(text, kName, Key().secret_key);
  G60_FUZZ_CHECK(signed_note.has_value(), "the seed note is signed");
  fuzz::MaybeWriteSeeds({
      *signed_note,
      text,
      note::VerifierKey(note::Verifier{kName, Key().public_key}),
      *signed_note + "\u2014 other.example/key AAAAAQ==\n",
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsView(data, size);
  if (auto opened = note::Open(text, note::Verifier{kName, Key().public_key})) {
    G60_FUZZ_CHECK(!opened->empty() && opened->back() == '\n', "an opened text ends in a newline");
    if (auto c = note::ParseCheckpoint(*opened)) {
      G60_FUZZ_CHECK(note::FormatCheckpoint(*c) == *opened, "a checkpoint formats back");
    }
  }
  if (auto c = note::ParseCheckpoint(text)) {
    G60_FUZZ_CHECK(note::FormatCheckpoint(*c) == text, "a checkpoint formats back");
  }
  (void)note::ParseVerifierKey(text);
  return 0;
}
