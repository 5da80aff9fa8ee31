#!/usr/bin/python3
"""Runs every case of tests/vectors/signed-notes.json through verify_bundle.py's note and
checkpoint reader, as tests/unit/note_test.cc runs them through ledger/note.cc.

    signed_notes_test.py [VECTORS.json]

Prints each case whose outcome differs from the file's, and exits 1 if there is one;
prints "OK: N cases" and exits 0 otherwise. tests/unit/note_test.cc runs it.
"""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import verify_bundle as vb  # noqa: E402


def outcome(case):
    """(result, problem, details) as verify_bundle.py gives them for the case."""
    note = case["note"].encode() if "note" in case else bytes.fromhex(case["note_hex"])
    known = [vb.parse_verifier(k) for k in case["verifiers"]]
    try:
        if "checkpoint" in case:
            assert len(known) == 1, "a checkpoint case has the ledger key alone"
            name, pub = known[0]
            partition = vb.partition_of_origin(case["checkpoint"]["origin"], name)
            origin, _, size, root = vb.open_checkpoint(note, name, pub, partition)
            return "accept", None, {"origin": origin, "size": size, "root": vb.b64(root)}
        text, verified = vb.open_note(note, known)
        return "accept", None, {"text": text, "verified_by": verified}
    except vb.Refused as e:
        return "reject", e.problem, str(e)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "vectors", "signed-notes.json")
    with open(path, "rb") as f:
        vectors = json.loads(f.read().decode("utf-8"))
    wrong = 0
    for case in vectors["cases"]:
        result, problem, details = outcome(case)
        expected = {"result": case["result"], "problem": case.get("problem")}
        if result == "accept" and case["result"] == "accept":
            if "checkpoint" in case:
                expected_details = dict(case["checkpoint"])
            else:
                expected_details = {"text": case["text"], "verified_by": case["verified_by"]}
            if details != expected_details:
                print(f"case {case['tcId']} ({case['comment']}): accepted with {details}, "
                      f"expected {expected_details}")
                wrong += 1
        elif (result, problem) != (expected["result"], expected["problem"]):
            print(f"case {case['tcId']} ({case['comment']}): {result} {problem or ''} "
                  f"({details if result == 'reject' else ''}), expected {expected['result']} "
                  f"{expected['problem'] or ''}")
            wrong += 1
    if wrong:
        print(f"signed_notes_test.py: FAILED: {wrong} of {len(vectors['cases'])} cases")
        return 1
    print(f"signed_notes_test.py: OK: {len(vectors['cases'])} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
