# Mutations of every valid RFC 6962 proof of the reference tree (rfc6962_vectors.json),
# each with a description and the outcome an RFC 9162 verifier must give. The outcomes
# come from the verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2,
# written out here in Python apart from the C++ code under test.
#
#   python3 tests/data/proof_mutations.py > tests/data/proof_mutations.json
import hashlib, json, os

here = os.path.dirname(os.path.abspath(__file__))
ref = json.load(open(os.path.join(here, "rfc6962_vectors.json")))
H = lambda b: hashlib.sha256(b).digest()
leaf = lambda d: H(b"\x00" + d)
node = lambda l, r: H(b"\x01" + l + r)
leaves = [bytes.fromhex(x) for x in ref["leaves"]]
roots = {r["size"]: bytes.fromhex(r["root"]) for r in ref["roots"]}

def verify_inclusion(m, n, leaf_hash, proof, root):  # RFC 9162 2.1.3.2
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1; sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node(r, p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root

def verify_consistency(m, n, r1, r2, proof):  # RFC 9162 2.1.4.2
    if m == n:
        return not proof and r1 == r2
    if m == 0 or m > n:
        return False
    if not proof and m != n:
        return False
    if m & (m - 1) == 0:  # a power of two: first_hash is implied
        proof = [r1] + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1; sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr); sr = node(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1; sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node(sr, c)
        fn >>= 1; sn >>= 1
    return fr == r1 and sr == r2 and sn == 0

def flip(h, byte=0, bit=0):
    b = bytearray(h); b[byte] ^= 1 << bit; return bytes(b)

Z = b"\x00" * 32
cases = []
def add(kind, desc, expect_fn, **fields):
    c = {"kind": kind, "description": desc}
    c.update({k: (v.hex() if isinstance(v, bytes) else [x.hex() for x in v] if isinstance(v, list) else v)
              for k, v in fields.items()})
    c["expected"] = "accept" if expect_fn() else "reject"
    cases.append(c)

for inc in ref["inclusion"]:
    m, n = inc["index"], inc["size"]
    proof = [bytes.fromhex(x) for x in inc["proof"]]
    lh, root = leaf(leaves[m]), roots[n]
    def inclusion(desc, m=m, n=n, lh=lh, proof=proof, root=root):
        add("inclusion", f"leaf {inc['index']} of {inc['size']}: {desc}",
            lambda: verify_inclusion(m, n, lh, proof, root),
            index=m, size=n, leaf_hash=lh, proof=proof, root=root)
    inclusion("the valid proof")
    inclusion("index + 1", m=m + 1)
    if m > 0: inclusion("index - 1", m=m - 1)
    inclusion("size + 1 with the root of that size", n=n + 1, root=roots.get(n + 1, Z))
    if n > 1: inclusion("size - 1 with the root of that size", n=n - 1, root=roots[n - 1])
    inclusion("size + 1 keeping the root (RFC 9162 binds the size only through the path's shape)", n=n + 1)
    if n > 1: inclusion("size - 1 keeping the root (RFC 9162 binds the size only through the path's shape)", n=n - 1)
    inclusion("leaf hash with a flipped bit", lh=flip(lh))
    inclusion("root with a flipped bit", root=flip(root, 31, 7))
    for i in range(len(proof)):
        inclusion(f"element {i} with a flipped bit", proof=proof[:i] + [flip(proof[i], i % 32, i % 8)] + proof[i + 1:])
        inclusion(f"element {i} removed", proof=proof[:i] + proof[i + 1:])
    inclusion("a trailing element (zeros) added", proof=proof + [Z])
    inclusion("an element added in front (the leaf hash)", proof=[lh] + proof)

for con in ref["consistency"]:
    m, n = con["size1"], con["size2"]
    proof = [bytes.fromhex(x) for x in con["proof"]]
    def consistency(desc, m=m, n=n, r1=roots[m], r2=roots[n], proof=proof):
        add("consistency", f"{con['size1']} -> {con['size2']}: {desc}",
            lambda: verify_consistency(m, n, r1, r2, proof),
            size1=m, size2=n, root1=r1, root2=r2, proof=proof)
    consistency("the valid proof")
    if m > 1: consistency("size1 - 1 with its root", m=m - 1, r1=roots[m - 1])
    if m < n: consistency("size1 + 1 with its root", m=m + 1, r1=roots[m + 1])
    if n < 8: consistency("size2 + 1 with its root", n=n + 1, r2=roots[n + 1])
    if n > m: consistency("size2 - 1 with its root", n=n - 1, r2=roots[n - 1])
    consistency("old root with a flipped bit", r1=flip(roots[m]))
    consistency("new root with a flipped bit", r2=flip(roots[n], 31, 7))
    for i in range(len(proof)):
        consistency(f"element {i} with a flipped bit", proof=proof[:i] + [flip(proof[i], i % 32, i % 8)] + proof[i + 1:])
        consistency(f"element {i} removed", proof=proof[:i] + proof[i + 1:])
    consistency("a trailing element (zeros) added", proof=proof + [Z])
    consistency("an element added in front (the old root)", proof=[roots[m]] + proof)

print(json.dumps({
    "about": "Mutations of every valid proof of the RFC 6962 reference tree, with the outcome an "
             "RFC 9162 verifier must give, computed by tests/data/proof_mutations.py (independent of "
             "the C++ code). Every mutation is rejected except the few marked 'keeping the root' "
             "that leave the path's shape unchanged: a proof binds the tree size only together "
             "with the signed root, which is why checkpoints sign size and root together.",
    "cases": cases}, indent=1))
