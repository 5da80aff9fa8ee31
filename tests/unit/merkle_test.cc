// RFC 6962 / RFC 9162 Merkle trees: golden roots and proofs of the reference tree
// (tests/data/rfc6962_vectors.json, computed from the RFC's definitions by an independent
// Python script), every proof of larger trees against a from-scratch computation, and
// every mutation of a valid proof rejected.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/merkle_verify.h"

using namespace g60;
using namespace g60::merkle;

namespace {

nlohmann::json Vectors() {
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/data/rfc6962_vectors.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

Hash FromHex(const std::string& hex) {
  auto raw = HexDecode(hex);
  REQUIRE(raw.has_value());
  REQUIRE(raw->size() == 32);
  Hash h;
  std::copy(raw->begin(), raw->end(), h.begin());
  return h;
}

std::vector<Hash> Proof(const nlohmann::json& j) {
  std::vector<Hash> out;
  for (const auto& h : j)
    out.push_back(FromHex(h));
  return out;
}

// The reference tree's 8 leaves, and a ninth (for the root of size 8 + 1).
MemoryTree ReferenceTree() {
  auto v = Vectors();
  MemoryTree t;
  for (size_t i = 0; i < 8; ++i) {
    t.Append(LeafHash(*HexDecode(v["leaves"][i].get<std::string>())));
  }
  t.Append(LeafHash("ninth"));
  return t;
}

// The ways a valid proof can be damaged: each must be rejected.
std::vector<std::vector<Hash>> Mutations(const std::vector<Hash>& proof) {
  std::vector<std::vector<Hash>> out;
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit : {0, 7}) {
      auto p = proof;
      p[i][static_cast<size_t>(bit) % 32] ^= static_cast<unsigned char>(1 << bit);
      out.push_back(p);  // one element with a flipped bit
    }
    auto removed = proof;
    removed.erase(removed.begin() + static_cast<long>(i));
    out.push_back(removed);  // one element missing
  }
  auto extra = proof;
  extra.push_back(Sha256("extra"));
  out.push_back(extra);  // trailing data
  auto front = proof;
  front.insert(front.begin(), Sha256("extra"));
  out.push_back(front);  // an element added in front
  return out;
}

}  // namespace

TEST_CASE("roots of the RFC 6962 reference tree, sizes 0 to 8", "[merkle]") {
  auto v = Vectors();
  MemoryTree t;
  for (const auto& r : v["roots"]) {
    uint64_t n = r["size"];
    while (t.size() < n)
      t.Append(LeafHash(*HexDecode(v["leaves"][t.size()].get<std::string>())));
    auto root = Root(t.Source(), n);
    REQUIRE(root.has_value());
    INFO("size " << n);
    CHECK(HexEncode(AsBytes(*root)) == r["root"].get<std::string>());
  }
  // The root of size 1 is the RFC 6962 leaf hash of the empty string.
  CHECK(HexEncode(AsBytes(LeafHash(""))) ==
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST_CASE("inclusion proofs of the reference tree: built, verified, every mutation rejected",
          "[merkle]") {
  auto v = Vectors();
  MemoryTree t = ReferenceTree();
  for (const auto& c : v["inclusion"]) {
    uint64_t m = c["index"], n = c["size"];
    INFO("leaf " << m << " of " << n);
    std::vector<Hash> expected = Proof(c["proof"]);
    auto built = InclusionProof(t.Source(), m, n);
    REQUIRE(built.has_value());
    CHECK(*built == expected);
    Hash root = *Root(t.Source(), n);
    Hash leaf = *t.Source()(0, m);
    CHECK(VerifyInclusion(m, n, leaf, expected, root).has_value());
    // Wrong index, wrong size, wrong leaf, wrong root.
    if (m + 1 < n) CHECK_FALSE(VerifyInclusion(m + 1, n, leaf, expected, root).has_value());
    if (m > 0) CHECK_FALSE(VerifyInclusion(m - 1, n, leaf, expected, root).has_value());
    // A size goes with its root (a checkpoint signs both): RFC 9162 proofs bind the size
    // only through the path's shape, so a bare size change with the old root can still
    // verify where the shapes agree. With the root of the changed size, it never does.
    CHECK_FALSE(VerifyInclusion(m, n + 1, leaf, expected, *Root(t.Source(), n + 1)).has_value());
    if (n > 1 && m < n - 1) {
      CHECK_FALSE(VerifyInclusion(m, n - 1, leaf, expected, *Root(t.Source(), n - 1)).has_value());
    }
    CHECK_FALSE(VerifyInclusion(m, n, Sha256("other"), expected, root).has_value());
    CHECK_FALSE(VerifyInclusion(m, n, leaf, expected, Sha256("other")).has_value());
    for (const auto& bad : Mutations(expected)) {
      CHECK_FALSE(VerifyInclusion(m, n, leaf, bad, root).has_value());
    }
  }
  CHECK_FALSE(InclusionProof(t.Source(), 8, 8).has_value());  // leaf 8 is not in 8 leaves
}

TEST_CASE("consistency proofs of the reference tree: built, verified, every mutation rejected",
          "[merkle]") {
  auto v = Vectors();
  MemoryTree t = ReferenceTree();
  for (const auto& c : v["consistency"]) {
    uint64_t m = c["size1"], n = c["size2"];
    INFO("from " << m << " to " << n);
    std::vector<Hash> expected = Proof(c["proof"]);
    auto built = ConsistencyProof(t.Source(), m, n);
    REQUIRE(built.has_value());
    CHECK(*built == expected);
    Hash r1 = *Root(t.Source(), m), r2 = *Root(t.Source(), n);
    CHECK(VerifyConsistency(m, n, r1, r2, expected).has_value());
    if (m == n) continue;
    CHECK_FALSE(VerifyConsistency(m, n, r2, r1, expected).has_value());
    CHECK_FALSE(VerifyConsistency(m, n, Sha256("other"), r2, expected).has_value());
    CHECK_FALSE(VerifyConsistency(m, n, r1, Sha256("other"), expected).has_value());
    if (m + 1 < n) CHECK_FALSE(VerifyConsistency(m + 1, n, r1, r2, expected).has_value());
    if (m > 1) CHECK_FALSE(VerifyConsistency(m - 1, n, r1, r2, expected).has_value());
    CHECK_FALSE(VerifyConsistency(m, n + 1, r1, *Root(t.Source(), n + 1), expected).has_value());
    if (n - 1 > m) {
      CHECK_FALSE(VerifyConsistency(m, n - 1, r1, *Root(t.Source(), n - 1), expected).has_value());
    }
    for (const auto& bad : Mutations(expected)) {
      CHECK_FALSE(VerifyConsistency(m, n, r1, r2, bad).has_value());
    }
  }
}

TEST_CASE("stored subtrees give the same heads and proofs as the definitions, up to 300 leaves",
          "[merkle]") {
  // Nodes written as AppendLeaf says, as the ledger stores them, against MemoryTree.
  std::map<std::pair<uint32_t, uint64_t>, Hash> store;
  NodeSource stored = [&](uint32_t level, uint64_t index) -> Result<Hash> {
    auto it = store.find({level, index});
    if (it == store.end()) return Fail(Error::NotFound("missing node"));
    return it->second;
  };
  MemoryTree reference;
  for (uint64_t i = 0; i < 300; ++i) {
    Hash leaf = LeafHash("entry " + std::to_string(i));
    auto writes = AppendLeaf(stored, i, leaf);
    REQUIRE(writes.has_value());
    for (const auto& w : *writes)
      store[{w.level, w.index}] = w.hash;
    reference.Append(leaf);
    uint64_t n = i + 1;
    Hash root = *Root(stored, n);
    REQUIRE(root == *Root(reference.Source(), n));
    for (uint64_t m : {uint64_t{0}, n / 3, n / 2, n - 1}) {
      auto p = InclusionProof(stored, m, n);
      REQUIRE(p.has_value());
      CHECK(VerifyInclusion(m, n, *stored(0, m), *p, root).has_value());
      if (m > 0) {
        auto c = ConsistencyProof(stored, m, n);
        REQUIRE(c.has_value());
        CHECK(VerifyConsistency(m, n, *Root(stored, m), root, *c).has_value());
      }
    }
  }
}

TEST_CASE("every case of tests/data/proof_mutations.json gets its expected outcome", "[merkle]") {
  // Generated by tests/data/proof_mutations.py with its own RFC 9162 verifier; each case
  // carries a description and "accept" or "reject".
  std::ifstream in(std::string(G60_SOURCE_DIR) + "/tests/data/proof_mutations.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  auto cases = nlohmann::json::parse(ss.str())["cases"];
  REQUIRE(cases.size() > 900);
  size_t rejected = 0;
  for (const auto& c : cases) {
    INFO(c["description"].get<std::string>());
    bool accepted = false;
    if (c["kind"] == "inclusion") {
      accepted = VerifyInclusion(c["index"].get<uint64_t>(), c["size"].get<uint64_t>(),
                                 FromHex(c["leaf_hash"]), Proof(c["proof"]), FromHex(c["root"]))
                     .has_value();
    } else {
      REQUIRE(c["kind"] == "consistency");
      accepted = VerifyConsistency(c["size1"].get<uint64_t>(), c["size2"].get<uint64_t>(),
                                   FromHex(c["root1"]), FromHex(c["root2"]), Proof(c["proof"]))
                     .has_value();
    }
    CHECK(accepted == (c["expected"] == "accept"));
    if (c["expected"] == "reject") ++rejected;
  }
  CHECK(rejected > 850);
}
