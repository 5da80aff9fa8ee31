#include "ledger/merkle_verify.h"

#include <fmt/format.h>

#include "ledger/merkle.h"

namespace g60::merkle {

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size) {
    return Fail(Error::InvalidArgument(fmt::format("leaf index {} >= tree size {}", index, size)));
  }
  // RFC 9162 2.1.3.2.
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0)
      return Fail(Error::InvalidArgument("inclusion proof is longer than the tree is deep"));
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return Fail(Error::InvalidArgument("inclusion proof is shorter than the tree is deep"));
  if (r != root) return Fail(Error::InvalidArgument("inclusion proof does not lead to the root"));
  return {};
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2,
                         const std::vector<Hash>& proof) {
  if (size1 > size2) {
    return Fail(Error::InvalidArgument(fmt::format("old size {} > new size {}", size1, size2)));
  }
  if (size1 == size2) {
    if (!proof.empty()) return Fail(Error::InvalidArgument("equal sizes take an empty proof"));
    if (root1 != root2) return Fail(Error::InvalidArgument("equal sizes with different roots"));
    return {};
  }
  if (size1 == 0) {
    if (!proof.empty()) return Fail(Error::InvalidArgument("an empty tree takes an empty proof"));
    return {};
  }
  if (proof.empty()) return Fail(Error::InvalidArgument("consistency proof is empty"));
  // RFC 9162 2.1.4.2.
  std::vector<Hash> path = proof;
  if (std::has_single_bit(size1)) path.insert(path.begin(), root1);
  uint64_t fn = size1 - 1, sn = size2 - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Fail(Error::InvalidArgument("consistency proof is too long"));
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Fail(Error::InvalidArgument("consistency proof is too short"));
  if (fr != root1)
    return Fail(Error::InvalidArgument("consistency proof does not give the old root"));
  if (sr != root2)
    return Fail(Error::InvalidArgument("consistency proof does not give the new root"));
  return {};
}

}  // namespace g60::merkle
