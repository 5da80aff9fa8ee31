#include "ledger/merkle.h"

#include <fmt/format.h>

#include <bit>

namespace g60::merkle {

Hash LeafHash(std::string_view leaf_data) {
  return Sha256(std::string_view(&kLeafPrefix, 1), leaf_data);
}

Hash NodeHash(const Hash& left, const Hash& right) {
  std::string buf;
  buf.reserve(65);
  buf.push_back(kNodePrefix);
  buf.append(AsBytes(left));
  buf.append(AsBytes(right));
  return Sha256(buf);
}

Hash EmptyRoot() {
  return Sha256(std::string_view());
}

namespace {
// The largest power of two below n (n >= 2): the RFC's split point k.
uint64_t Split(uint64_t n) {
  return std::bit_floor(n - 1);
}
}  // namespace

Result<Hash> RangeHash(const NodeSource& nodes, uint64_t start, uint64_t size) {
  G60_ASSERT(size > 0);
  if (std::has_single_bit(size) && start % size == 0) {
    return nodes(static_cast<uint32_t>(std::countr_zero(size)), start / size);
  }
  uint64_t k = Split(size);
  auto left = RangeHash(nodes, start, k);
  if (!left) return left;
  auto right = RangeHash(nodes, start + k, size - k);
  if (!right) return right;
  return NodeHash(*left, *right);
}

Result<Hash> Root(const NodeSource& nodes, uint64_t size) {
  if (size == 0) return EmptyRoot();
  return RangeHash(nodes, 0, size);
}

namespace {
Status Path(const NodeSource& nodes, uint64_t m, uint64_t start, uint64_t n,
            std::vector<Hash>& out) {
  if (n <= 1) return {};
  uint64_t k = Split(n);
  if (m < k) {
    G60_TRY(Path(nodes, m, start, k, out));
    auto h = RangeHash(nodes, start + k, n - k);
    if (!h) return Fail(h.error());
    out.push_back(*h);
  } else {
    G60_TRY(Path(nodes, m - k, start + k, n - k, out));
    auto h = RangeHash(nodes, start, k);
    if (!h) return Fail(h.error());
    out.push_back(*h);
  }
  return {};
}

Status SubProof(const NodeSource& nodes, uint64_t m, uint64_t start, uint64_t n, bool b,
                std::vector<Hash>& out) {
  if (m == n) {
    if (!b) {
      auto h = RangeHash(nodes, start, n);
      if (!h) return Fail(h.error());
      out.push_back(*h);
    }
    return {};
  }
  uint64_t k = Split(n);
  if (m <= k) {
    G60_TRY(SubProof(nodes, m, start, k, b, out));
    auto h = RangeHash(nodes, start + k, n - k);
    if (!h) return Fail(h.error());
    out.push_back(*h);
  } else {
    G60_TRY(SubProof(nodes, m - k, start + k, n - k, false, out));
    auto h = RangeHash(nodes, start, k);
    if (!h) return Fail(h.error());
    out.push_back(*h);
  }
  return {};
}
}  // namespace

Result<std::vector<Hash>> InclusionProof(const NodeSource& nodes, uint64_t index, uint64_t size) {
  if (index >= size) {
    return Fail(
        Error::InvalidArgument(fmt::format("leaf {} is not in a tree of {} leaves", index, size)));
  }
  std::vector<Hash> out;
  G60_TRY(Path(nodes, index, 0, size, out));
  return out;
}

Result<std::vector<Hash>> ConsistencyProof(const NodeSource& nodes, uint64_t old_size,
                                           uint64_t new_size) {
  if (old_size == 0 || old_size > new_size) {
    return Fail(Error::InvalidArgument(fmt::format(
        "no consistency proof from size {} to size {} (need 0 < old <= new)", old_size, new_size)));
  }
  std::vector<Hash> out;
  G60_TRY(SubProof(nodes, old_size, 0, new_size, true, out));
  return out;
}

Result<std::vector<NodeWrite>> AppendLeaf(const NodeSource& nodes, uint64_t index,
                                          const Hash& leaf_hash) {
  std::vector<NodeWrite> out{{0, index, leaf_hash}};
  Hash current = leaf_hash;
  uint32_t level = 0;
  uint64_t i = index;
  while (i % 2 == 1) {  // this node completes its parent
    auto left = nodes(level, i - 1);
    if (!left) return Fail(left.error());
    current = NodeHash(*left, current);
    ++level;
    i /= 2;
    out.push_back({level, i, current});
  }
  return out;
}

void MemoryTree::Append(const Hash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  for (size_t l = 0; levels_[l].size() % 2 == 0; ++l) {
    if (l + 1 == levels_.size()) levels_.emplace_back();
    const auto& row = levels_[l];
    levels_[l + 1].push_back(NodeHash(row[row.size() - 2], row[row.size() - 1]));
  }
}

NodeSource MemoryTree::Source() const {
  return [this](uint32_t level, uint64_t index) -> Result<Hash> {
    if (level >= levels_.size() || index >= levels_[level].size()) {
      return Fail(Error::NotFound(fmt::format("no subtree ({}, {})", level, index)));
    }
    return levels_[level][index];
  };
}

}  // namespace g60::merkle
