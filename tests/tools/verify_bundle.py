#!/usr/bin/python3
"""An auditor's proof-bundle verifier written from docs/audit.md alone.

It shares no code with g60ledger: Python's hashlib and base64, PyNaCl (Debian's
python3-nacl) for Ed25519, and a protobuf wire-format reader of a few lines. ops/test
runs it on bundles made by the C++ code, and on every case of
tests/vectors/signed-notes.json (tests/tools/signed_notes_test.py).

    verify_bundle.py BUNDLE.json... --ledger-key NAME+HASH+KEY --anchor BASE64 [--anchor ...]
    verify_bundle.py --consistency OLD.note NEW.note PROOF.json --ledger-key NAME+HASH+KEY

Exit 0 when every link of every bundle verifies (or the consistency proof joins the two
checkpoints), 1 (naming the file and the reason) otherwise.
"""
import argparse, base64, binascii, hashlib, json, re, struct, sys

import nacl.exceptions
import nacl.signing

H = lambda b: hashlib.sha256(b).digest()
b64 = lambda b: base64.b64encode(b).decode()


class Bad(Exception):
    pass


class Refused(Bad):
    """A note or checkpoint refused, with the problem's name in signed-notes.json."""

    def __init__(self, problem, message):
        super().__init__(message)
        self.problem = problem


def unb64(s, what):
    """RFC 4648 section 4: standard alphabet, padded, and canonical (no stray bits, which
    section 3.5 lets a decoder refuse), so that one value has one spelling."""
    if not isinstance(s, str):
        raise Bad(f"{what} is not a string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise Bad(f"{what} is not base64")
    if base64.b64encode(raw).decode() != s:
        raise Bad(f"{what} is not base64 (standard alphabet, padded, no stray bits)")
    return raw


# ---- JSON files handed to us (docs/audit.md, "One rule for every file an auditor hands us")
def load_json(data, what):
    if data.startswith(b"\xef\xbb\xbf"):
        raise Bad(f"{what} begins with a byte order mark; JSON files are UTF-8 without one")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Bad(f"{what} is not UTF-8: byte {e.start}")

    def members(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise Bad(f"{what} names the member {k!r} twice in one object")
            obj[k] = v
        return obj

    def constant(name):
        raise Bad(f"{what} is not JSON: {name} is not a JSON value")

    try:
        value = json.loads(text, object_pairs_hook=members, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise Bad(f"{what} is not JSON: {e}")
    except RecursionError:
        raise Bad(f"{what} nests too deeply")

    def text_only(v):  # JSON strings are Unicode text: no lone surrogate escapes
        for x in ([*v.keys(), *v.values()] if isinstance(v, dict) else v if isinstance(v, list)
                  else [v]):
            if isinstance(x, (dict, list)):
                text_only(x)
            elif isinstance(x, str):
                try:
                    x.encode("utf-8")
                except UnicodeEncodeError:
                    raise Bad(f"{what} has a string that is not Unicode text (a lone surrogate)")
    text_only(value)
    return value


def same_json(a, b):
    """Equal as JSON values of the same type: 1, 1.0 and true are three different things."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def is_uint(v):
    return type(v) is int and 0 <= v < 1 << 64


def require_members(obj, required, optional, what):
    if not isinstance(obj, dict):
        raise Bad(f"{what} is not a JSON object")
    for k in required:
        if k not in obj:
            raise Bad(f"{what} has no {k!r}")
    for k in obj:
        if k not in required and k not in optional:
            raise Bad(f"{what} has an unknown member {k!r}")


# ---- protobuf wire format (docs/audit.md section 2 names the field numbers)
def fields(buf):
    out, i = {}, 0
    def varint():
        nonlocal i
        v = shift = 0
        while True:
            if i >= len(buf):
                raise Bad("truncated protobuf")
            b = buf[i]; i += 1
            v |= (b & 0x7F) << shift; shift += 7
            if not b & 0x80:
                return v
    while i < len(buf):
        tag = varint(); num, wt = tag >> 3, tag & 7
        if wt == 0:
            val = varint()
        elif wt == 2:
            n = varint(); val = bytes(buf[i:i + n]); i += n
            if i > len(buf):
                raise Bad("truncated protobuf")
        elif wt == 1:
            val = buf[i:i + 8]; i += 8
        elif wt == 5:
            val = buf[i:i + 4]; i += 4
        else:
            raise Bad("bad protobuf wire type")
        out.setdefault(num, []).append(val)
    return out

def one(f, n, default):
    return f.get(n, [default])[-1]

def s64(v):  # int64 varint as two's complement
    return v - (1 << 64) if v >= 1 << 63 else v

def text(f, n):
    return one(f, n, b"").decode()


REASONS = {0: "NONE", 1: "MALFORMED_MESSAGE", 2: "MALFORMED_EVENT", 3: "KAFKA_KEY_MISMATCH", 4: "WRONG_PARTITION",
           10: "UNKNOWN_KEY", 11: "BAD_SIGNATURE", 12: "KEY_REVOKED", 13: "KEY_NOT_VALID",
           14: "ROLE_NOT_ALLOWED", 15: "LEVEL_MISMATCH", 20: "DUPLICATE_EVENT",
           30: "INVALID_FIELD", 31: "NO_APPLICATION", 32: "ALREADY_APPROVED", 33: "NO_APPROVAL",
           35: "EXCEEDS_APPROVAL", 36: "NO_PAYMENT", 37: "EXCEEDS_PAID",
           38: "AMOUNT_OVERFLOW", 40: "EXCEEDS_REQUESTED",
           41: "KEY_STATE", 50: "NO_CATALOG", 51: "UNKNOWN_PROGRAMME", 52: "OUTSIDE_VALIDITY",
           53: "EXCEEDS_CAP", 54: "WRONG_REWARD", 55: "ALREADY_REWARDED", 56: "YEARLY_CAP",
           57: "WINDOW_CAP", 58: "DUPLICATE_SUPPORT", 59: "CARRY_MISMATCH", 60: "SUPERSEDED",
           61: "LEVEL_NOT_PROGRAMME", 62: "CO_FUNDING_CAP", 63: "NOT_STAGED",
           64: "UNKNOWN_STAGE", 65: "STAGE_AMOUNT", 66: "STAGE_ALREADY_PAID",
           67: "STAGE_PLAN_MISMATCH", 68: "DATED_BEFORE_APPLICATION", 69: "DATED_BEFORE_APPROVAL",
           70: "DATED_BEFORE_PAYMENT", 71: "DATED_BEFORE_SUPERSEDED"}
TYPES = {1: ("application", "application"), 2: ("approval", "approval"),
         3: ("stage-payment", "payment"), 4: ("clawback", "clawback"),
         5: ("key-grant", "key-grant"), 6: ("key-revoke", "key-revoke"),
         7: ("catalog-published", "catalog")}
PAYLOAD_TYPE = {10: 1, 11: 2, 12: 3, 13: 4, 14: 5, 15: 6, 16: 7}  # Event payload field -> type
ADMIN, PORTAL, DISTRICT, MUNICIPAL, TREASURY = 1, 2, 3, 4, 5


def required_role(event_type, level):
    return {1: PORTAL, 3: TREASURY, 4: TREASURY, 5: ADMIN, 6: ADMIN, 7: ADMIN}.get(
        event_type, DISTRICT if level == 1 else MUNICIPAL if level == 2 else None)


# ---- RFC 9162 section 2.1.3.2
def verify_inclusion(m, n, leaf, proof, root):
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            if not fn & 1:
                while True:
                    fn >>= 1; sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root


# ---- RFC 9162 section 2.1.4.2
def verify_consistency(m, n, r1, r2, proof):
    if m == n:
        return not proof and r1 == r2
    if m == 0 or m > n or not proof:
        return False
    if m & (m - 1) == 0:  # a power of two: the first hash is the old root itself
        proof = [r1] + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1; sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = H(b"\x01" + c + fr); sr = H(b"\x01" + c + sr)
            if not fn & 1:
                while True:
                    fn >>= 1; sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = H(b"\x01" + sr + c)
        fn >>= 1; sn >>= 1
    return sn == 0 and fr == r1 and sr == r2


# ---- C2SP signed note and tlog checkpoint (docs/audit.md section 4)
SIGNATURE_LINES_MAX = 100  # Go's note.Open limit; signed-note: at least 16
DASH = "\u2014 ".encode()
# Unicode's White_Space property: a key name holds none of these (signed-note).
SPACES = {*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
          0x202F, 0x205F, 0x3000}


def key_hash(name, pub):
    return H(name.encode() + b"\n\x01" + pub)[:4]


def parse_verifier(key):
    name, khash, k = key.split("+", 2)  # the base64 key may contain "+" itself
    raw = unb64(k, "verifier key")
    if len(raw) != 33 or raw[0] != 1:
        raise Bad("verifier key is not Ed25519")
    if name_problem(name):
        raise Bad("verifier key's name is empty or has a space or '+'")
    pub = raw[1:]
    if key_hash(name, pub).hex() != khash:
        raise Bad("verifier key hash does not match")
    return name, pub


def name_problem(name):
    if not name:
        return "its key name is empty"
    if "+" in name:
        return f"its key name {name!r} contains '+'"
    if any(ord(c) in SPACES or ord(c) < 0x20 for c in name):
        return f"its key name {name!r} contains a space"
    return None


def parse_signature_line(line, number):
    def malformed(why):
        return Refused("malformed_signature_line",
                       f"signature line {number} of the note is not \"\u2014 <key name> "
                       f"<base64 signature>\": {why}")
    if not line.startswith(DASH):
        raise malformed("it does not begin with an em dash (U+2014) and a space")
    name, sp, sig64 = line[len(DASH):].decode("utf-8").partition(" ")
    why = name_problem(name)
    if why:
        raise malformed(why)
    if not sp or not sig64:
        raise malformed("it has no signature after the key name")
    try:
        raw = unb64(sig64, "its signature")
    except Bad as e:
        raise malformed(str(e))
    if len(raw) < 5:
        raise malformed(f"its signature is {len(raw)} bytes, too short for a key ID and a "
                        f"signature")
    return name, raw[:4], raw[4:], number


def open_note(note, known):
    """c2sp.org/signed-note: the note (bytes) with the known keys [(name, public key)]:
    returns (text, names of the known keys whose signatures verified), or raises Refused."""
    try:
        note.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refused("not_utf8", f"the note is not UTF-8 text: byte {e.start}")
    for i, c in enumerate(note):
        if c < 0x20 and c != 0x0A:
            raise Refused("control_character",
                          f"the note has a carriage return (CR) at byte {i}: notes end their lines "
                          f"with LF alone, and a CRLF note is refused, not repaired" if c == 0x0D
                          else f"the note has the control character 0x{c:02x} at byte {i}")
    split = note.rfind(b"\n\n")
    if split < 0:
        raise Refused("no_signature_block", "the note has no empty line before its signatures")
    text, sigs = note[:split + 1], note[split + 2:]
    if not sigs:
        raise Refused("no_signature_block", "the note has no signature after its last empty line")
    if not sigs.endswith(b"\n"):
        raise Refused("no_signature_block", "the note's last line does not end with a newline")
    lines = sigs[:-1].split(b"\n")
    if len(lines) > SIGNATURE_LINES_MAX:
        raise Refused("too_many_signatures",
                      f"the note has {len(lines)} signature lines; at most "
                      f"{SIGNATURE_LINES_MAX} are read")
    parsed = [parse_signature_line(line, i + 1) for i, line in enumerate(lines)]
    verified, others = [], []
    for name, kid, sig, number in parsed:
        keys = [pub for (kname, pub) in known if kname == name and key_hash(kname, pub) == kid]
        if not keys:  # another key, even if it shares the name or the ID: ignored
            others.append(name)
            continue
        def verifies(pub):
            if len(sig) != 64:
                return False
            try:
                nacl.signing.VerifyKey(pub).verify(text, sig)
                return True
            except nacl.exceptions.BadSignatureError:
                return False
        if not any(verifies(pub) for pub in keys):
            raise Refused("bad_signature",
                          f"the note's signature by {name} (key ID {kid.hex()}, signature line "
                          f"{number}) does not verify: the note was altered after it was signed, "
                          f"or was signed by another key")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise Refused("no_known_signature",
                      f"the note carries no signature by {' or '.join(n for n, _ in known)}; its "
                      f"signatures are by {', '.join(others)}")
    return text.decode("utf-8"), verified


def parse_checkpoint(text):
    """c2sp.org/tlog-checkpoint: (origin, size, root, extension lines) of a note's text."""
    if not text.endswith("\n"):
        raise Bad("the checkpoint's text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Bad(f"the checkpoint has {len(lines)} line(s); it needs origin, size and root")
    origin, size, root = lines[:3]
    if not origin:
        raise Bad("the checkpoint's origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size, re.ASCII) or int(size) >= 1 << 64:
        raise Bad(f"the checkpoint's tree size {size!r} is not a 64-bit decimal number without "
                  f"leading zeros")
    raw = unb64(root, "the checkpoint's root hash")
    if len(raw) != 32:
        raise Bad(f"the checkpoint's root hash is {len(raw)} bytes, not 32")
    if any(not line for line in lines[3:]):
        raise Bad("the checkpoint has an empty extension line")
    return origin, int(size), raw, lines[3:]


def partition_of_origin(origin, name):
    prefix = name + "/"
    digits = origin[len(prefix):]
    if not origin.startswith(prefix) or not re.fullmatch(r"0|[1-9][0-9]*", digits, re.ASCII) or \
            int(digits) >= 1 << 32:
        raise Bad(f"the checkpoint's origin {origin!r} is not a partition of ledger {name}")
    return int(digits)


def open_checkpoint(note, name, pub, partition=None):
    """A checkpoint note (str or bytes) signed by the ledger key (name, pub), of the ledger's
    `partition` when given: returns (origin, partition, size, root) or raises Refused."""
    if isinstance(note, str):
        note = note.encode("utf-8", "surrogatepass")
    text, _ = open_note(note, [(name, pub)])
    try:
        origin, size, root, _ = parse_checkpoint(text)
    except Bad as e:
        raise Refused("checkpoint_text", str(e))
    try:
        p = partition_of_origin(origin, name)
    except Bad as e:
        raise Refused("wrong_origin", str(e))
    if partition is not None and p != partition:
        raise Refused("wrong_origin", f"the checkpoint is of partition {p}, not {partition}")
    return origin, p, size, root


def key_id(pub):
    return H(pub)[:16].hex()


def verify(bundle, ledger_key, anchors):
    name, pub = parse_verifier(ledger_key)
    require_members(bundle, {"format", "kind", "subject", "ledger", "links"}, set(), "the bundle")
    if not same_json(bundle["format"], "g60ledger-bundle/v1") or \
            not any(same_json(bundle["kind"], k) for k in ("event", "trace")):
        raise Bad("not a g60ledger-bundle/v1 of kind event or trace")
    if not same_json(bundle["ledger"], name):
        raise Bad("bundle is from another ledger")
    if not isinstance(bundle["subject"], str):
        raise Bad("the bundle's subject is not a string")
    if not isinstance(bundle["links"], list) or not bundle["links"]:
        raise Bad("the bundle's links are not a non-empty array")
    anchor_ids = {key_id(a): a for a in anchors}
    done, accepted, last = [], {}, None
    for i, l in enumerate(bundle["links"]):
        where = f"link {i}"
        if not isinstance(l, dict):
            raise Bad(f"{where} is not a JSON object")
        entry = unb64(l["entry"], f"{where} entry")
        if len(entry) < 56 or entry[:8] != b"G60E\x01\x00\x00\x00":
            raise Bad(f"{where}: entry header")
        part, seq = struct.unpack(">IQ", entry[8:20])
        (n,) = struct.unpack(">I", entry[52:56])
        if len(entry) != 56 + n:
            raise Bad(f"{where}: entry length")
        if last is not None and (part, seq) <= last:
            raise Bad(f"{where}: links out of order")
        last = (part, seq)
        body = fields(entry[56:])
        src = fields(one(body, 1, b""))
        value = one(body, 2, b"")
        etype = one(body, 8, 0)
        verdict = one(body, 3, 0)
        derived = {
            "role": TYPES.get(etype, ("undecodable", "undecodable"))[1],
            "partition": part, "sequence": seq,
            "event_id": text(body, 6), "applicant_id": text(body, 7),
            "event_type": TYPES.get(etype, ("undecodable", "undecodable"))[0],
            "programme": text(body, 10), "detail": text(body, 5), "key_id": text(body, 9),
            "verdict": "ACCEPTED" if verdict == 1 else "REJECTED",
            "reason": REASONS[one(body, 4, 0)],
            "amount_fen": s64(one(body, 11, 0)),
            "effects": [e.decode() for e in body.get(13, [])],
            "signed_event": b64(value),
            "leaf_hash": b64(H(b"\x00" + entry)),
        }
        require_members(l, set(derived) | {"entry", "inclusion_proof", "checkpoint"}, {"event"},
                        where)
        for k, v in derived.items():
            if not same_json(l[k], v):
                raise Bad(f"{where}: {k} is {json.dumps(l[k])}, the entry says {json.dumps(v)}")
        if not isinstance(l["checkpoint"], str):
            raise Bad(f"{where}: checkpoint is not a string")
        try:
            _, _, size, root = open_checkpoint(l["checkpoint"], name, pub, part)
        except Refused as e:
            raise Bad(f"{where}: checkpoint: {e}")
        ip = l["inclusion_proof"]
        require_members(ip, {"leaf_index", "tree_size", "hashes"}, set(), f"{where} inclusion_proof")
        if not is_uint(ip["leaf_index"]) or ip["leaf_index"] != seq:
            raise Bad(f"{where}: inclusion_proof.leaf_index is not the entry's sequence")
        if not is_uint(ip["tree_size"]) or ip["tree_size"] != size:
            raise Bad(f"{where}: inclusion_proof.tree_size is not the checkpoint's size")
        if not isinstance(ip["hashes"], list):
            raise Bad(f"{where}: inclusion_proof.hashes is not an array")
        hashes = [unb64(h, f"{where} proof hash") for h in ip["hashes"]]
        if any(len(h) != 32 for h in hashes) or \
                not verify_inclusion(seq, size, H(b"\x00" + entry), hashes, root):
            raise Bad(f"{where}: inclusion proof fails against the checkpoint root")
        event = None
        if verdict == 1:
            signed = fields(value)
            event_bytes, kid, sig = one(signed, 1, b""), text(signed, 2), one(signed, 3, b"")
            event = fields(event_bytes)
            level = 0
            payload = [(PAYLOAD_TYPE[f], fields(event[f][-1])) for f in PAYLOAD_TYPE if f in event]
            if len(payload) != 1 or payload[0][0] != etype:
                raise Bad(f"{where}: event payload")
            ptype, pay = payload[0]
            if ptype == 2:
                level = one(pay, 4, 0)
            ts = s64(one(src, 4, 0))
            if kid in anchor_ids:
                signer, role = anchor_ids[kid], ADMIN
            else:
                signer = None
                for (gp, gs, gpay) in done:
                    if gp == part and gpay is not None and gpay[0] == 5 and \
                            key_id(one(gpay[1], 1, b"")) == kid:
                        signer, role = one(gpay[1], 1, b""), one(gpay[1], 2, 0)
                        start, end = s64(one(gpay[1], 3, 0)), s64(one(gpay[1], 4, 0))
                if signer is None:
                    raise Bad(f"{where}: signer {kid} is neither an anchor nor granted earlier")
                if ts < start or (end != 0 and ts >= end):
                    raise Bad(f"{where}: signer key not valid at the record's timestamp")
            try:
                nacl.signing.VerifyKey(signer).verify(b"g60ledger/event/v1\x00" + event_bytes, sig)
            except nacl.exceptions.BadSignatureError:
                raise Bad(f"{where}: event signature does not verify")
            if role != required_role(etype, level):
                raise Bad(f"{where}: signer's role may not sign this event")
            if "event" in l and (l["event"].get("event_id") != text(event, 1) or
                                 l["event"].get("applicant_id", "") != text(event, 2)):
                raise Bad(f"{where}: the decoded event shown differs from the signed one")
            # Event ids are unique per applicant (docs/formats.md, "Event identity"), and
            # a key grant (no applicant) may carry an applicant event's id.
            accepted[(text(event, 2), text(event, 1))] = (derived["role"], ptype, pay)
            done.append((part, seq, (ptype, pay)))
        else:
            done.append((part, seq, None))
    subjects = {l["event_id"] for l in bundle["links"]} | {
        f"{l['partition']}:{l['sequence']}" for l in bundle["links"]}
    if bundle["subject"] not in subjects:
        raise Bad("no link is the bundle's subject")
    if bundle["kind"] == "trace":
        def need(applicant, ref, role):
            # An event names events of its own applicant.
            if accepted.get((applicant, ref), (None,))[0] != role:
                raise Bad(f"trace: {role} {ref} is named but not an accepted link")
        for (applicant, eid), (role, ptype, pay) in accepted.items():
            if ptype == 2:
                need(applicant, text(pay, 1), "application")
            elif ptype == 3:
                need(applicant, text(pay, 1), "approval")
            elif ptype == 4:
                for ref in pay.get(1, []):
                    need(applicant, ref.decode(), "payment")
    return len(bundle["links"])


def check_consistency(old_path, new_path, proof_path, ledger_key):
    """verify-consistency offline: two checkpoint files and a consistency proof file
    (docs/audit.md section 4), under the rule for files handed to us."""
    name, pub = parse_verifier(ledger_key)
    cps = []
    for path in (old_path, new_path):
        try:
            cps.append(open_checkpoint(open(path, "rb").read(), name, pub))
        except Refused as e:
            raise Bad(f"{path}: {e}")
    (origin, p_old, m, r1), (_, p_new, n, r2) = cps
    if p_old != p_new:
        raise Bad(f"{old_path} is of partition {p_old}, {new_path} of partition {p_new}")
    if m > n:
        raise Bad(f"{old_path} (size {m}) is newer than {new_path} (size {n})")
    proof = load_json(open(proof_path, "rb").read(), proof_path)
    require_members(proof, {"format", "origin", "old_size", "new_size", "hashes"}, set(),
                    proof_path)
    if not same_json(proof["format"], "g60ledger-consistency/v1"):
        raise Bad(f"{proof_path}: format is {json.dumps(proof['format'])}")
    if not same_json(proof["origin"], origin):
        raise Bad(f"{proof_path}: origin is {json.dumps(proof['origin'])} but the checkpoints "
                  f"sign {origin!r}")
    for member, signed_size in (("old_size", m), ("new_size", n)):
        if not is_uint(proof[member]) or proof[member] != signed_size:
            raise Bad(f"{proof_path}: {member} is {json.dumps(proof[member])} but the checkpoint "
                      f"signs the tree size {signed_size}")
    if not isinstance(proof["hashes"], list):
        raise Bad(f"{proof_path}: hashes is not an array")
    hashes = [unb64(h, f"{proof_path}: hashes[{i}]") for i, h in enumerate(proof["hashes"])]
    if any(len(h) != 32 for h in hashes):
        raise Bad(f"{proof_path}: a hash is not 32 bytes")
    if not verify_consistency(m, n, r1, r2, hashes):
        raise Bad(f"INCONSISTENT: {origin} at size {m} is not a prefix of the log at size {n}")
    return f"{origin} size {n} extends size {m}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="*")
    ap.add_argument("--consistency", nargs=3, metavar=("OLD", "NEW", "PROOF"))
    ap.add_argument("--ledger-key", required=True)
    ap.add_argument("--anchor", action="append", default=[], help="base64 public key")
    a = ap.parse_args()
    failures = (Bad, KeyError, IndexError, TypeError, ValueError, AttributeError, OSError)
    if a.consistency:
        try:
            print(f"verify_bundle.py: OK: {check_consistency(*a.consistency, a.ledger_key)}")
            return 0
        except failures as e:
            print(f"verify_bundle.py: FAILED: {e}")
            return 1
    if not a.bundles or not a.anchor:
        ap.error("give bundles and --anchor, or --consistency OLD NEW PROOF")
    anchors = [base64.b64decode(x) for x in a.anchor]
    links = 0
    for path in a.bundles:
        try:
            links += verify(load_json(open(path, "rb").read(), path), a.ledger_key, anchors)
        except failures as e:
            print(f"verify_bundle.py: FAILED: {path}: {e}")
            return 1
    print(f"verify_bundle.py: OK: {len(a.bundles)} bundle(s), {links} link(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
