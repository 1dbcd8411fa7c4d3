"""Checking what the log publishes, as an outsider would: a proof document (inclusion or
consistency) and the signed checkpoints it rests on. Pure; `schemas/log/verify.py` does the same
with nothing but Python's standard library and PyNaCl."""

from __future__ import annotations

import base64

import orjson

from streams.core import merkle
from streams.core.checkpoint import Checkpoint, NoteError, key_id, open_note


class ProofError(ValueError):
    """The proof does not hold: the message says which part."""


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, public key) from a signed-note verifier key `name+hexid+base64(0x01 || key)`."""
    try:  # the name has no "+"; the key's base64 may
        name, hex_id, encoded = text.split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ProofError(f"{text!r} is not a verifier key (name+id+key)") from None
    if raw[:1] != b"\x01" or len(raw) != 33 or key_id(name, raw[1:]).hex() != hex_id:
        raise ProofError(f"{text!r} is not an Ed25519 verifier key whose id matches")
    return name, raw[1:]


def signed_checkpoint(signed: dict, key: str) -> Checkpoint:
    """The checkpoint of a `checkpoint` object, if its note is signed by `key` and says what it
    claims."""
    name, public = parse_verifier_key(key)
    try:
        checkpoint = Checkpoint.parse(open_note(signed["note"], name, public))
    except (NoteError, ValueError, KeyError) as exc:
        raise ProofError(f"checkpoint: {exc}") from None
    if checkpoint.size != signed.get("tree_size") or checkpoint.root.hex() != signed.get(
        "root_hash"
    ):
        raise ProofError("checkpoint: its tree size or root hash is not the one its note signs")
    return checkpoint


def check_proof(document: dict, key: str, tps: str | None = None, ballot: str | None = None) -> str:
    """A line saying what was proven, or a ProofError. With `tps` or `ballot`, an inclusion proof
    must be of that TPS's (and ballot's) tally: a server may answer a question with a genuine proof
    of another."""
    if "consistency_path" in document:
        old, new = (signed_checkpoint(document[side], key) for side in ("from", "to"))
        path = [bytes.fromhex(h) for h in document["consistency_path"]]
        if not merkle.verify_consistency(old.size, new.size, old.root, new.root, path):
            raise ProofError(
                f"the tree of {old.size} leaves is not a prefix of the tree of {new.size}"
            )
        return (
            f"consistent: the log of {old.size} leaves is a prefix of the log of {new.size}, both "
            "signed"
        )
    checkpoint = signed_checkpoint(document["checkpoint"], key)
    leaf = base64.b64decode(document["leaf"], validate=True)
    index, size = int(document["leaf_index"]), int(document["tree_size"])
    if size != checkpoint.size or document.get("root_hash") != checkpoint.root.hex():
        raise ProofError("the proof's tree is not the signed checkpoint's")
    if not merkle.verify_inclusion(
        leaf, index, size, [bytes.fromhex(h) for h in document["audit_path"]], checkpoint.root
    ):
        raise ProofError(f"leaf {index} is not in the signed tree of {size} leaves")
    event = orjson.loads(leaf)["event"]
    asked = (tps or event["tps"], ballot or event["ballot"])
    if (event["tps"], event["ballot"]) != asked:
        raise ProofError(
            f"the proof is of {event['ballot']} at TPS {event['tps']}, not of {asked[1]} at TPS "
            f"{asked[0]} as asked: "
            "a true proof of something else"
        )
    return (
        f"included: {event['ballot']} {event['tps']} revision {event['revision']} is leaf {index} "
        f"of the signed tree of {size}"
    )
