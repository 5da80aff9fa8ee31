// The policy catalogue: as text (schemas/catalog.txtpb, `catalog check` and `catalog
// publish`; ParseCatalogText, CheckCatalog) and as the bytes a CatalogPublished event
// carries (IndexCatalog). The first input byte chooses which. Properties: never crashes;
// a text catalogue that passes its checks serialises to bytes the ledger indexes.
#include <cstdint>

#include "fuzz_support.h"
#include "ledger/catalog.h"
#include "support.h"

using namespace g60;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/schemas/catalog.txtpb");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fuzz::MaybeWriteSeeds({"t" + text, "b" + SerializeCatalog(testing::TestCatalog())});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = fuzz::AsView(data + 1, size - 1);
  if (data[0] == 't') {
    auto c = ParseCatalogText(rest, "fuzz.txtpb");
    if (!c) return 0;
    if (CheckCatalog(*c).empty()) {
      auto index = IndexCatalog(SerializeCatalog(*c));
      G60_FUZZ_CHECK(index.has_value(), "a catalogue that passes its checks is indexed");
    }
  } else {
    (void)IndexCatalog(std::string(rest));
  }
  return 0;
}
