// The Merkle log of a partition: RFC 6962 / RFC 9162 hashing (SHA-256, leaf prefix 0x00,
// node prefix 0x01) and the construction of tree heads, inclusion proofs and consistency
// proofs. Verification is apart, in merkle_verify.h, and shares nothing with this file
// but the two hash functions.
//
// Hashes are read from perfect subtrees: node (level, index) covers leaves
// [index * 2^level, (index + 1) * 2^level). The store keeps every complete one, so any
// tree head or proof needs O(log n) subtree hashes, each composed of O(log n) reads.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"

namespace g60::merkle {

inline constexpr char kLeafPrefix = 0x00;
inline constexpr char kNodePrefix = 0x01;

Hash LeafHash(std::string_view leaf_data);  // SHA-256(0x00 || data): the entry hash
Hash NodeHash(const Hash& left, const Hash& right);
Hash EmptyRoot();  // SHA-256 of nothing: the head of an empty log

// The stored hash of the perfect subtree (level, index).
using NodeSource = std::function<Result<Hash>(uint32_t level, uint64_t index)>;

// MTH of leaves [start, start + size), start aligned as in the RFC's recursion.
Result<Hash> RangeHash(const NodeSource& nodes, uint64_t start, uint64_t size);
// MTH of the first `size` leaves.
Result<Hash> Root(const NodeSource& nodes, uint64_t size);
// RFC 9162 section 2.1.3.1: PATH(index, D[size]).
Result<std::vector<Hash>> InclusionProof(const NodeSource& nodes, uint64_t index, uint64_t size);
// RFC 9162 section 2.1.4.1: PROOF(old_size, D[new_size]).
Result<std::vector<Hash>> ConsistencyProof(const NodeSource& nodes, uint64_t old_size,
                                           uint64_t new_size);

// The perfect subtrees completed by appending leaf `index`: (level, index) pairs from
// the leaf up, in the order to store them. `left_sibling` gives the stored left node of
// a level; the new node hashes come back with their positions.
struct NodeWrite {
  uint32_t level;
  uint64_t index;
  Hash hash;
};
Result<std::vector<NodeWrite>> AppendLeaf(const NodeSource& nodes, uint64_t index,
                                          const Hash& leaf_hash);

// A whole tree in memory (tests, independent checks): every perfect subtree computed.
class MemoryTree {
 public:
  void Append(const Hash& leaf_hash);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  NodeSource Source() const;

 private:
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace g60::merkle
