#!/usr/bin/env python3
"""Check a tally log proof yourself: no tally needed, only Python 3.9+ and PyNaCl.

    pip install pynacl

    python3 verify.py PROOF.json|URL --key 'tally/pemilu+1a2b3c4d+AX...' [--tps CODE] [--ballot B]

PROOF is what `GET /api/log/proof?tps=..&ballot=..` or `GET /api/log/consistency?from=..&to=..`
answers (or `tally log proof --json`). KEY is the operator's published verifier key: get it from the
operator by another channel than the proof. Exit 0 if the proof holds and its checkpoints carry the
operator's signature; 1 with the reason otherwise. An inclusion proof must be of the TPS and ballot
asked (--tps, --ballot; from a URL, its tps= and ballot= by default): a server could answer with a
true proof of another TPS.

The checks follow RFC 9162 (2.1.3.2 inclusion, 2.1.4.2 consistency; SHA-256, leaf hash
SHA-256(0x00 || leaf), node hash SHA-256(0x01 || left || right)) and C2SP's signed-note and
tlog-checkpoint formats. Kept apart from tally's own code on purpose, so that it can be read whole.
"""

import base64
import hashlib
import json
import sys
import urllib.parse
import urllib.request

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_holds(leaf, index, size, path, root):
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, hashlib.sha256(b"\x00" + leaf).digest()
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistency_holds(old, new, old_root, new_root, path):
    if old == new:
        return not path and old_root == new_root
    if not 0 < old < new or not path:
        return False
    if old & (old - 1) == 0:
        path = [old_root] + path
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def checkpoint(signed, key):
    """(size, root) of a checkpoint whose note the key signed, else an exception saying why."""
    name, key_hex, encoded = key.split("+", 2)  # the name has no "+"; the key's base64 may
    raw = base64.b64decode(encoded)
    public = raw[1:]
    wanted = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    if raw[:1] != b"\x01" or wanted.hex() != key_hex:
        raise ValueError("the key is not an Ed25519 verifier key whose id matches")
    text, _, signatures = signed["note"].partition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        if line.startswith("\u2014 " + name + " "):
            blob = base64.b64decode(line.split(" ")[-1])
            if blob[:4] == wanted:
                try:
                    VerifyKey(public).verify(text.encode(), blob[4:])
                except BadSignatureError:
                    raise ValueError("the checkpoint's signature does not match its text") from None
                origin, size, root = text.split("\n")[:3]
                size, root = int(size), base64.b64decode(root)
                if size != signed["tree_size"] or root.hex() != signed["root_hash"]:
                    raise ValueError("the checkpoint's size or root is not the one its note signs")
                return size, root
    raise ValueError(f"the checkpoint carries no signature by {name}")


def main(argv):
    options = dict(zip(argv[2::2], argv[3::2]))  # noqa: B905 (Python 3.9 has no strict=)
    if len(argv) % 2 or "--key" not in options or set(options) - {"--key", "--tps", "--ballot"}:
        print(__doc__)
        return 2
    source, key = argv[1], options["--key"]
    asked = (
        dict(urllib.parse.parse_qsl(urllib.parse.urlparse(source).query)) if "://" in source else {}
    )
    tps, ballot = (
        options.get("--tps", asked.get("tps")),
        options.get("--ballot", asked.get("ballot")),
    )
    if source.startswith(("http://", "https://")):
        document = json.load(urllib.request.urlopen(source, timeout=60))
    else:
        with open(source, "rb") as f:
            document = json.load(f)
    try:
        if "consistency_path" in document:
            old_size, old_root = checkpoint(document["from"], key)
            new_size, new_root = checkpoint(document["to"], key)
            path = [bytes.fromhex(h) for h in document["consistency_path"]]
            if not consistency_holds(old_size, new_size, old_root, new_root, path):
                raise ValueError(
                    f"the log of {old_size} leaves is not a prefix of the log of {new_size}"
                )
            print(
                f"OK: the signed log of {old_size} leaves is a prefix of the signed log"
                f" of {new_size}"
            )
        else:
            size, root = checkpoint(document["checkpoint"], key)
            leaf = base64.b64decode(document["leaf"])
            path = [bytes.fromhex(h) for h in document["audit_path"]]
            if document["tree_size"] != size or not inclusion_holds(
                leaf, document["leaf_index"], size, path, root
            ):
                raise ValueError("the leaf is not in the signed tree")
            event = json.loads(leaf)["event"]
            if (tps and event["tps"] != tps) or (ballot and event["ballot"] != ballot):
                raise ValueError(
                    f"the proof is of {event['ballot']} at TPS {event['tps']}, not the one asked"
                )
            print(
                f"OK: {event['ballot']} of TPS {event['tps']}, revision {event['revision']},"
                f" votes {event['votes']},"
            )
            print(f"    is leaf {document['leaf_index']} of the signed log of {size} leaves")
    except (ValueError, KeyError) as problem:
        print(f"FAILED: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
