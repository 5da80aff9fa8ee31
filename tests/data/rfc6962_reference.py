# Independent RFC 6962 / RFC 9162 reference (definitions, straight from the RFC text).
import hashlib, json
def H(b): return hashlib.sha256(b).digest()
def leaf(d): return H(b'\x00'+d)
def node(l,r): return H(b'\x01'+l+r)
def k_of(n):
    k=1
    while k*2<n: k*=2
    return k
def mth(D):
    n=len(D)
    if n==0: return H(b'')
    if n==1: return leaf(D[0])
    k=k_of(n)
    return node(mth(D[:k]), mth(D[k:]))
def path(m,D):
    n=len(D)
    if n<=1: return []
    k=k_of(n)
    if m<k: return path(m,D[:k])+[mth(D[k:])]
    return path(m-k,D[k:])+[mth(D[:k])]
def subproof(m,D,b):
    n=len(D)
    if m==n: return [] if b else [mth(D)]
    k=k_of(n)
    if m<=k: return subproof(m,D[:k],b)+[mth(D[k:])]
    return subproof(m-k,D[k:],False)+[mth(D[:k])]
def proof(m,D): return subproof(m,D,True)
leaves=[b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        bytes(range(0x60,0x70))]
out={"about":"RFC 6962 reference tree (the 8 leaves of the Certificate Transparency and transparency-dev test data), roots for sizes 0..8 and every inclusion and consistency proof, computed from the RFC 9162 definitions (MTH, PATH, PROOF) by an independent Python script (tests/data/rfc6962_reference.py).",
     "leaves":[l.hex() for l in leaves],"roots":[],"inclusion":[],"consistency":[]}
for n in range(0,9):
    out["roots"].append({"size":n,"root":mth(leaves[:n]).hex()})
for n in range(1,9):
    for m in range(n):
        out["inclusion"].append({"index":m,"size":n,"proof":[h.hex() for h in path(m,leaves[:n])]})
for n in range(1,9):
    for m in range(1,n+1):
        out["consistency"].append({"size1":m,"size2":n,"proof":[h.hex() for h in proof(m,leaves[:n])]})
print(json.dumps(out,indent=1))
