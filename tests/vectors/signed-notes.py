#!/usr/bin/python3
# Writes tests/vectors/signed-notes.json: signed notes (c2sp.org/signed-note) and
# checkpoints (c2sp.org/tlog-checkpoint), each with the outcome a verifier that follows the
# two specifications to the letter must give. Both of the project's verifiers run every
# case: ledger/note.cc (what verify-proof, verify-consistency, audit and the ledger itself
# use) from tests/unit/note_test.cc, and tests/tools/verify_bundle.py from
# tests/tools/signed_notes_test.py.
#
# The outcomes are written here by hand, from the specifications; nothing here runs either
# verifier. The keys come from fixed seeds, so running it again gives the same file:
#
#   /usr/bin/python3 tests/vectors/signed-notes.py > tests/vectors/signed-notes.json
import base64, hashlib, json, sys

import nacl.signing

H = lambda b: hashlib.sha256(b).digest()
b64 = lambda b: base64.b64encode(b).decode()
DASH = "\u2014 "


class Key:
    def __init__(self, name, label):
        self.name = name
        self.sk = nacl.signing.SigningKey(H(b"g60ledger signed-note vectors: " + label.encode()))
        self.pub = bytes(self.sk.verify_key)
        self.key_id = H(name.encode() + b"\n\x01" + self.pub)[:4]
        self.verifier = name + "+" + self.key_id.hex() + "+" + b64(b"\x01" + self.pub)

    def sig(self, text: bytes) -> bytes:  # key ID || Ed25519 signature of the text
        return self.key_id + self.sk.sign(text).signature

    def line(self, text: bytes, name=None, raw=None) -> bytes:
        raw = self.sig(text) if raw is None else raw
        return f"{DASH}{self.name if name is None else name} {b64(raw)}\n".encode()


LEDGER = Key("g60ledger.example/songjiang", "ledger")
WITNESS = Key("witness.example/w1", "witness")
STRANGER = Key("stranger.example/s", "stranger")
SAME_NAME = Key(LEDGER.name, "another key named like the ledger")
ORIGIN = LEDGER.name + "/0"
ROOT = H(b"the root of the vectors' tree")
TEXT = f"{ORIGIN}\n213\n{b64(ROOT)}\n".encode()
EMPTY_ROOT = H(b"")

# Go's published example (golang.org/x/mod/sumdb/note, package documentation).
GO_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (b"If you think cryptography is the answer to your problem,\n"
           b"then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n" + DASH + "PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg"
                     "YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()


def signed(text, *keys):
    return text + b"\n" + b"".join(k.line(text) for k in keys)


def checkpoint(origin=ORIGIN, size="213", root=None, extra=b""):
    root = b64(ROOT) if root is None else root
    return f"{origin}\n{size}\n{root}\n".encode() + extra


def pad_bits(s):
    """The same base64 with the unused low bits of its last character set: it decodes to
    the same bytes under a lenient decoder, and is refused by a canonical one."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = s.rstrip("=")
    pad = len(s) - len(body)
    assert pad in (1, 2)
    i = alphabet.index(body[-1])
    i |= 0b11 if pad == 1 else 0b1111
    return body[:-1] + alphabet[i] + "=" * pad


cases = []


def case(comment, note, result, problem=None, verifiers=(LEDGER,), flags=(), text=None,
         verified_by=None, cp=None, go=None):
    """note: bytes. result: "accept" or "reject". cp: the checkpoint the text must read as
    (a dict with the origin expected; on acceptance also its size and root)."""
    c = {"tcId": len(cases) + 1, "comment": comment}
    try:
        c["note"] = note.decode("utf-8")
    except UnicodeDecodeError:
        c["note_hex"] = note.hex()
    c["verifiers"] = [v if isinstance(v, str) else v.verifier for v in verifiers]
    if cp is not None:
        c["checkpoint"] = cp
    c["result"] = result
    if result == "accept":
        assert problem is None
        c["text"] = (note[:note.rfind(b"\n\n") + 1] if text is None else text).decode()
        c["verified_by"] = [LEDGER.name] if verified_by is None else verified_by
    else:
        assert problem in PROBLEMS, problem
        c["problem"] = problem
    if flags:
        c["flags"] = list(flags)
    if go is not None:
        c["go"] = go
    cases.append(c)


PROBLEMS = {
    "not_utf8": "a byte sequence that is not UTF-8 (signed-note: notes MUST be valid UTF-8)",
    "control_character": "an ASCII control character other than newline, carriage return "
                         "included (signed-note: MUST NOT contain any)",
    "no_signature_block": "no empty line before the signature lines, nothing after it, or a "
                          "note that does not end with a newline",
    "too_many_signatures": "more signature lines than the verifier's limit of 100 (Go's; "
                           "signed-note: SHOULD limit, MUST accept at least 16)",
    "malformed_signature_line": "a line after the last empty line that is not em dash, space, "
                                "key name (non-empty, no Unicode space, no '+'), space, "
                                "base64 (RFC 4648 section 4, canonical) of at least 5 bytes",
    "bad_signature": "a signature whose key name and key ID are a known key's and that does not "
                     "verify (signed-note: verifiers MUST verify it; a failure rejects the note)",
    "no_known_signature": "no signature by a known key (signed-note: MUST reject)",
    "checkpoint_text": "the text is not a tlog-checkpoint: origin, tree size in decimal without "
                       "leading zeros, base64 of a 32-byte root hash, non-empty extension lines",
    "wrong_origin": "a checkpoint of another log than the one expected",
}

CP = lambda size=213, root=ROOT: {"origin": ORIGIN, "size": size, "root": b64(root)}
EXPECT = {"origin": ORIGIN}

# ---- accepted
case("the ledger's checkpoint, signed by the ledger key", signed(TEXT, LEDGER), "accept", cp=CP())
case("Go's published example note and verifier key (golang.org/x/mod/sumdb/note)", GO_NOTE,
     "accept", verifiers=[GO_KEY], verified_by=["PeterNeumann"])
case("a witness cosigned after the ledger; only the ledger key is known",
     signed(TEXT, LEDGER, WITNESS), "accept", cp=CP(), flags=["unknown key"])
case("a witness cosigned before the ledger; only the ledger key is known",
     signed(TEXT, WITNESS, LEDGER), "accept", flags=["unknown key"])
case("both keys known, both signatures verify", signed(TEXT, WITNESS, LEDGER), "accept",
     verifiers=[LEDGER, WITNESS], verified_by=[WITNESS.name, LEDGER.name])
case("both keys known, only the witness signed: one known key verifying is enough",
     signed(TEXT, WITNESS), "accept", verifiers=[LEDGER, WITNESS], verified_by=[WITNESS.name])
case("the ledger's signature line twice, byte for byte (each is verified)",
     TEXT + b"\n" + LEDGER.line(TEXT) * 2, "accept", flags=["duplicate"])
case("100 signature lines, the limit: the ledger's and 99 by unknown keys",
     TEXT + b"\n" + LEDGER.line(TEXT) +
     b"".join(STRANGER.line(TEXT, name=f"stranger.example/{i}") for i in range(99)),
     "accept", flags=["limit", "unknown key"])
case("100 lines, the last the ledger's", TEXT + b"\n" +
     b"".join(STRANGER.line(TEXT, name=f"stranger.example/{i}") for i in range(99)) +
     LEDGER.line(TEXT), "accept", flags=["limit", "unknown key"])
BLANK_TEXT = b"first paragraph\n\nsecond paragraph\n"
case("an empty line inside the text: the last empty line separates the signatures",
     signed(BLANK_TEXT, LEDGER), "accept", text=BLANK_TEXT)
case("the text is one empty line", signed(b"\n", LEDGER), "accept", text=b"\n")
OTHER_TEXT = "DEL \x7f and NEL \u0085 are not ASCII control characters; 松江 G60\n".encode()
case("DEL (U+007F), NEL (U+0085) and CJK characters in the text", signed(OTHER_TEXT, LEDGER),
     "accept", text=OTHER_TEXT)
case("another key with the ledger's name (same name, other key ID) is an unknown key",
     signed(TEXT, SAME_NAME, LEDGER), "accept", flags=["unknown key"])
case("the ledger's key ID under another name is an unknown key",
     TEXT + b"\n" + LEDGER.line(TEXT, name="impostor.example/x") + LEDGER.line(TEXT),
     "accept", flags=["unknown key"])
case("an unknown key's signature of 4 + 10 bytes is ignored, not measured",
     TEXT + b"\n" + STRANGER.line(TEXT, raw=STRANGER.key_id + bytes(10)) + LEDGER.line(TEXT),
     "accept", flags=["unknown key"])
case("an unknown key's signature that would not verify is ignored",
     TEXT + b"\n" + STRANGER.line(TEXT, raw=STRANGER.sig(b"other text\n")) + LEDGER.line(TEXT),
     "accept", flags=["unknown key"])

# ---- carriage returns and other control characters
CRLF_TEXT = TEXT.replace(b"\n", b"\r\n")
case("CRLF line ends throughout, signed over the CRLF text",
     CRLF_TEXT + b"\r\n" + LEDGER.line(CRLF_TEXT).replace(b"\n", b"\r\n"), "reject",
     "control_character", flags=["CRLF"])
case("the ledger's note with its line ends converted to CRLF",
     signed(TEXT, LEDGER).replace(b"\n", b"\r\n"), "reject", "control_character", flags=["CRLF"])
case("CRLF on the signature line only", TEXT + b"\n" + LEDGER.line(TEXT)[:-1] + b"\r\n",
     "reject", "control_character", flags=["CRLF"])
CR_TEXT = TEXT[:-1] + b"\r\n"
case("a CR before the text's last newline, signed with it", signed(CR_TEXT, LEDGER), "reject",
     "control_character", flags=["CRLF"])
NUL_TEXT = TEXT[:5] + b"\x00" + TEXT[5:]
case("a NUL in the text, signed with it", signed(NUL_TEXT, LEDGER), "reject",
     "control_character")
TAB_TEXT = b"tab\there\n"
case("a tab in the text, signed with it", signed(TAB_TEXT, LEDGER), "reject", "control_character")
case("an escape character in a signature line",
     TEXT + b"\n" + LEDGER.line(TEXT) + STRANGER.line(TEXT, name="esc\x1b[31m.example"),
     "reject", "control_character")
case("a tab in a key name", TEXT + b"\n" + LEDGER.line(TEXT) +
     STRANGER.line(TEXT, name="tab\tname"), "reject", "control_character")

# ---- not UTF-8
case("a lone 0xFF byte in the text", signed(b"caf\xff\n", LEDGER), "reject", "not_utf8")
case("an overlong encoding of '/' (C0 AF) in the origin",
     signed(TEXT.replace(b"/0\n", b"\xc0\xaf0\n"), LEDGER), "reject", "not_utf8")
case("a UTF-16 surrogate encoded as UTF-8 (ED A0 80)", signed(b"\xed\xa0\x80\n", LEDGER),
     "reject", "not_utf8")
case("a code point beyond U+10FFFF (F4 90 80 80)", signed(b"\xf4\x90\x80\x80\n", LEDGER),
     "reject", "not_utf8")
case("a UTF-8 sequence cut short (E2 80) in a key name",
     TEXT + b"\n" + LEDGER.line(TEXT) + STRANGER.line(TEXT, name="cut").replace(
         b"cut", b"cut\xe2\x80"), "reject", "not_utf8")
case("Latin-1 text (0xE9 for e-acute)", signed(b"caf\xe9\n", LEDGER), "reject", "not_utf8")

# ---- the note's shape
case("the final newline is missing", signed(TEXT, LEDGER)[:-1], "reject", "no_signature_block",
     flags=["final newline"])
case("no signature lines after the empty line", TEXT + b"\n", "reject", "no_signature_block")
case("no empty line between text and signature", TEXT + LEDGER.line(TEXT), "reject",
     "no_signature_block")
case("the text alone", TEXT, "reject", "no_signature_block")
case("an empty note", b"", "reject", "no_signature_block")
case("empty text: the note starts with an empty line and a signature",
     b"\n" + LEDGER.line(b""), "reject", "no_signature_block")
case("an empty line after the signature: nothing follows the last empty line",
     signed(TEXT, LEDGER) + b"\n", "reject", "no_signature_block")

# ---- signature lines that do not parse
case("a line that is not a signature line after the ledger's",
     signed(TEXT, LEDGER) + b"not a signature\n", "reject", "malformed_signature_line",
     flags=["extra line"])
case("text after the signatures, behind an empty line",
     signed(TEXT, LEDGER) + b"\ntrailing words\n", "reject", "malformed_signature_line",
     flags=["extra line"])
case("an en dash (U+2013) instead of the em dash",
     TEXT + b"\n" + LEDGER.line(TEXT).replace("\u2014".encode(), "\u2013".encode()), "reject",
     "malformed_signature_line")
case("two hyphens instead of the em dash",
     TEXT + b"\n" + LEDGER.line(TEXT).replace("\u2014".encode(), b"--"), "reject",
     "malformed_signature_line")
case("no space after the em dash",
     TEXT + b"\n" + LEDGER.line(TEXT).replace("\u2014 ".encode(), "\u2014".encode()), "reject",
     "malformed_signature_line")
case("a key name with '+'", signed(TEXT, LEDGER) + STRANGER.line(TEXT, name="a+b.example"),
     "reject", "malformed_signature_line", flags=["key name"])
case("a key name with a no-break space (U+00A0)",
     signed(TEXT, LEDGER) + STRANGER.line(TEXT, name="no\u00a0break"), "reject",
     "malformed_signature_line", flags=["key name"])
case("a key name with an ideographic space (U+3000)",
     signed(TEXT, LEDGER) + STRANGER.line(TEXT, name="\u677e\u6c5f\u3000G60"), "reject",
     "malformed_signature_line", flags=["key name"])
case("a key name with a next-line character (U+0085, a Unicode space)",
     signed(TEXT, LEDGER) + STRANGER.line(TEXT, name="next\u0085line"), "reject",
     "malformed_signature_line", flags=["key name"])
case("an empty key name", signed(TEXT, LEDGER) + STRANGER.line(TEXT, name=""), "reject",
     "malformed_signature_line", flags=["key name"])
case("a key name and no signature", signed(TEXT, LEDGER) + f"{DASH}{STRANGER.name}\n".encode(),
     "reject", "malformed_signature_line")
case("two spaces between key name and signature",
     TEXT + b"\n" + f"{DASH}{LEDGER.name}  {b64(LEDGER.sig(TEXT))}\n".encode(), "reject",
     "malformed_signature_line", flags=["base64"])
case("a space inside the base64", TEXT + b"\n" + LEDGER.line(TEXT)[:-20] + b" " +
     LEDGER.line(TEXT)[-20:], "reject", "malformed_signature_line", flags=["base64"])
url_safe = b64(LEDGER.sig(TEXT)).replace("+", "-").replace("/", "_")
assert url_safe != b64(LEDGER.sig(TEXT))
case("the signature in the URL-safe base64 alphabet",
     TEXT + b"\n" + f"{DASH}{LEDGER.name} {url_safe}\n".encode(), "reject",
     "malformed_signature_line", flags=["base64"])
case("the signature's base64 without its padding",
     TEXT + b"\n" + LEDGER.line(TEXT).replace(b"=", b""), "reject",
     "malformed_signature_line", flags=["base64"])
sig_b64 = b64(LEDGER.sig(TEXT))
case("the signature's base64 with non-zero padding bits (same bytes to a lenient decoder)",
     TEXT + b"\n" + f"{DASH}{LEDGER.name} {pad_bits(sig_b64)}\n".encode(), "reject",
     "malformed_signature_line", flags=["base64"],
     go="accept: Go's base64.StdEncoding ignores the padding bits; RFC 4648 section 3.5 lets a "
        "decoder refuse them, and g60ledger reads only canonical base64, so that one signature "
        "has one spelling")
case("a signature of 3 bytes, shorter than a key ID",
     signed(TEXT, LEDGER) + STRANGER.line(TEXT, raw=b"abc"), "reject",
     "malformed_signature_line", flags=["key ID"])
case("a signature of 4 bytes: a key ID and no signature",
     signed(TEXT, LEDGER) + STRANGER.line(TEXT, raw=STRANGER.key_id), "reject",
     "malformed_signature_line", flags=["key ID"])
case("101 signature lines, one over the limit", TEXT + b"\n" + LEDGER.line(TEXT) +
     b"".join(STRANGER.line(TEXT, name=f"stranger.example/{i}") for i in range(100)),
     "reject", "too_many_signatures", flags=["limit"])

# ---- signatures by a known key that fail
BAD = LEDGER.sig(TEXT.replace(b"\n213\n", b"\n214\n"))  # the ledger's signature of another text
case("the ledger's signature fails and a valid one follows (issue 13's example)",
     TEXT + b"\n" + LEDGER.line(TEXT, raw=BAD) + LEDGER.line(TEXT), "reject", "bad_signature",
     flags=["failing signature"])
case("a valid signature by the ledger, then a failing one by the same key",
     TEXT + b"\n" + LEDGER.line(TEXT) + LEDGER.line(TEXT, raw=BAD), "reject", "bad_signature",
     flags=["failing signature", "duplicate"],
     go="accept: Go's note.Open skips a second signature by a key it has seen without "
        "verifying it; signed-note says verifiers MUST verify every signature of a known key "
        "and SHOULD reject the note when one fails, which g60ledger does")
case("the ledger key's line carries 4 + 32 bytes, before a valid one",
     TEXT + b"\n" + LEDGER.line(TEXT, raw=LEDGER.key_id + bytes(32)) + LEDGER.line(TEXT),
     "reject", "bad_signature", flags=["failing signature"])
case("the ledger key's line carries 4 + 65 bytes, after a valid one",
     TEXT + b"\n" + LEDGER.line(TEXT) + LEDGER.line(TEXT, raw=LEDGER.sig(TEXT) + b"\x00"),
     "reject", "bad_signature", flags=["failing signature", "duplicate"],
     go="accept: as above, the second line is not verified by Go")
case("the tree size changed after signing", signed(TEXT, LEDGER).replace(b"\n213\n", b"\n214\n"),
     "reject", "bad_signature", flags=["failing signature"])
case("a signature over the text and the empty line",
     TEXT + b"\n" + LEDGER.line(TEXT + b"\n"), "reject", "bad_signature",
     flags=["failing signature"])
case("both keys known: the ledger's verifies, the witness's fails",
     TEXT + b"\n" + LEDGER.line(TEXT) + WITNESS.line(TEXT, raw=WITNESS.sig(b"other\n")),
     "reject", "bad_signature", verifiers=[LEDGER, WITNESS], flags=["failing signature"])
case("only a witness signed; the ledger key is the only known key", signed(TEXT, WITNESS),
     "reject", "no_known_signature", flags=["unknown key"])
case("only another key with the ledger's name signed", signed(TEXT, SAME_NAME), "reject",
     "no_known_signature", flags=["unknown key"])
case("Go's example note checked with the ledger key", GO_NOTE, "reject", "no_known_signature")

# ---- checkpoints (c2sp.org/tlog-checkpoint), all signed by the ledger key
MAX = "18446744073709551615"
FORMATS = "accept: github.com/transparency-dev/formats v0.1.1 log.Checkpoint.Unmarshal "
case("a checkpoint of the empty tree: size 0 and the hash of nothing",
     signed(checkpoint(size="0", root=b64(EMPTY_ROOT)), LEDGER), "accept",
     cp=CP(0, EMPTY_ROOT))
case("the largest tree size a 64-bit count holds", signed(checkpoint(size=MAX), LEDGER),
     "accept", cp=CP(int(MAX)))
case("a non-empty extension line (opaque; signed with the rest)",
     signed(checkpoint(extra=b"extension line\n"), LEDGER), "accept", cp=CP())
for comment, size in [("a leading zero in the tree size", "0213"),
                      ("a negative tree size", "-1"),
                      ("a plus sign before the tree size", "+213"),
                      ("a tree size beyond 64 bits", "18446744073709551616"),
                      ("the tree size in Arabic-Indic digits", "\u0662\u0661\u0663"),
                      ("the tree size in full-width digits", "\uff12\uff11\uff13"),
                      ("a space after the tree size", "213 "),
                      ("an empty tree size line", ""),
                      ("the tree size in hexadecimal", "0xd5"),
                      ("a tree size with a decimal point", "213.0")]:
    case(comment, signed(checkpoint(size=size), LEDGER), "reject", "checkpoint_text", cp=EXPECT,
         flags=["tree size"],
         go=(FORMATS + "reads the size with strconv.ParseUint, which takes leading zeros; "
             "tlog-checkpoint forbids them" if size == "0213" else None))
for comment, root in [("a root hash of 31 bytes", b64(ROOT[:31])),
                      ("a root hash of 33 bytes", b64(ROOT + b"\x00")),
                      ("a root hash that is not base64", "not base64!"),
                      ("a root hash in hexadecimal", ROOT.hex()),
                      ("a root hash without base64 padding", b64(ROOT).rstrip("=")),
                      ("a root hash with non-zero padding bits", pad_bits(b64(ROOT))),
                      ("an empty root hash line", "")]:
    case(comment, signed(checkpoint(root=root), LEDGER), "reject", "checkpoint_text", cp=EXPECT,
         flags=["root hash"],
         go=(FORMATS + "does not check the root hash's length; tlog-checkpoint's root is an "
             "RFC 6962 (SHA-256) hash" if root in (b64(ROOT[:31]), b64(ROOT + b"\x00"),
                                                  ROOT.hex(), "") else
             FORMATS + "decodes base64 leniently, ignoring the padding bits"
             if "padding bits" in comment else None))
case("no origin: the text is the tree size and the root hash",
     signed(f"213\n{b64(ROOT)}\n".encode(), LEDGER), "reject", "checkpoint_text", cp=EXPECT,
     flags=["origin"])
case("an empty origin line", signed(checkpoint(origin=""), LEDGER), "reject", "checkpoint_text",
     cp=EXPECT, flags=["origin"])
case("the root hash line is missing", signed(f"{ORIGIN}\n213\n".encode(), LEDGER), "reject",
     "checkpoint_text", cp=EXPECT)
case("an empty extension line (an empty line inside the text)",
     signed(checkpoint(extra=b"\nafter an empty line\n"), LEDGER), "reject", "checkpoint_text",
     cp=EXPECT, go=FORMATS + "does not read the extension lines; tlog-checkpoint: they MUST be "
                             "non-empty")
for comment, origin in [("a checkpoint of another partition", LEDGER.name + "/1"),
                        ("a checkpoint of another ledger", "g60ledger.example/minhang/0"),
                        ("the ledger's name without a partition", LEDGER.name),
                        ("a space after the origin", ORIGIN + " "),
                        ("the partition with a leading zero", LEDGER.name + "/00"),
                        ("the origin in capitals", ORIGIN.upper())]:
    case(comment, signed(checkpoint(origin=origin), LEDGER), "reject", "wrong_origin", cp=EXPECT,
         flags=["origin"])
case("a valid checkpoint with a CRLF line end", signed(TEXT, LEDGER).replace(b"\n", b"\r\n", 1),
     "reject", "control_character", cp=EXPECT, flags=["CRLF"])
case("a valid checkpoint whose signature fails",
     TEXT + b"\n" + LEDGER.line(TEXT, raw=BAD), "reject", "bad_signature", cp=EXPECT,
     flags=["failing signature"])

json.dump({
    "about": "Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint) "
             "with the outcome a verifier following both to the letter gives. Each case is a "
             "note (exact text; note_hex when it is not UTF-8), the verifier keys known to the "
             "verifier, and the result: on accept the note's text and the names of the known "
             "keys whose signatures verified, in the order of their first signature line; on "
             "reject the problem. A case with `checkpoint` also reads the text as a checkpoint "
             "whose origin must be the one given. A note with several faults is rejected for "
             "the first of: not_utf8, control_character, no_signature_block, "
             "too_many_signatures, malformed_signature_line, bad_signature, "
             "no_known_signature, checkpoint_text, wrong_origin. `go` notes where Go's "
             "golang.org/x/mod/sumdb/note.Open (v0.43.0), or for a checkpoint "
             "github.com/transparency-dev/formats/log (v0.1.1), answers otherwise, and why.",
    "source": "tests/vectors/signed-notes.py (keys from fixed seeds); c2sp.org/signed-note, "
              "c2sp.org/tlog-checkpoint, RFC 4648",
    "signature_lines_max": 100,
    "problems": PROBLEMS,
    "cases": cases,
}, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
