// Verification of RFC 9162 inclusion and consistency proofs (sections 2.1.3.2 and
// 2.1.4.2), kept apart from their construction (merkle.h) so that a verifier trusts only
// this file and the two hash functions.
#pragma once

#include <cstdint>
#include <vector>

#include "ledger/crypto.h"
#include "ledger/status.h"

namespace g60::merkle {

// OK when `proof` shows that `leaf_hash` is leaf `index` of the tree of `size` leaves
// whose root is `root`; InvalidArgument naming what does not hold otherwise.
Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                       const std::vector<Hash>& proof, const Hash& root);

// OK when `proof` shows that the tree of `size1` leaves with root `root1` is a prefix of
// the tree of `size2` leaves with root `root2`.
Status VerifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2,
                         const std::vector<Hash>& proof);

}  // namespace g60::merkle
