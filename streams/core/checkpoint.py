"""The transparency log's leaves and checkpoints. Pure: bytes in, bytes out.

A leaf is one applied tally, as canonical JSON (keys sorted, no whitespace: what devices sign, see
`signatures`): {"decision": {"applied_at", "offset", "partition", "previous_revision", "revision"},
"event": <the event exactly as its device signed it, with sig>}.

A checkpoint is a C2SP signed note (c2sp.org/signed-note) whose text is a C2SP tlog-checkpoint
(c2sp.org/tlog-checkpoint): the origin, the tree size, the root hash in base64, then one extension
line per ballot with the national totals the tree's leaves add up to:
    tally/<night>
    1234
    <base64 root>
    PPWP tps=800 invalid=1201 voters=160000 01=51000 02=58000 03=49799
    <blank line>
    — <key name> <base64 of key id (4 bytes) and Ed25519 signature (64)>
The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), as signed notes
define it for Ed25519.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

ED25519 = b"\x01"  # the signed-note signature type of Ed25519


def leaf_bytes(
    event: bytes, revision: int, previous: int, applied_at: str, partition: int, offset: int
) -> bytes:
    """A leaf: the signed event (canonical JSON bytes, with sig) and the decision that applied
    it."""
    decision = {
        "applied_at": applied_at,
        "offset": offset,
        "partition": partition,
        "previous_revision": previous,
        "revision": revision,
    }
    return (
        b'{"decision":'
        + orjson.dumps(decision, option=orjson.OPT_SORT_KEYS)
        + b',"event":'
        + event
        + b"}"
    )


@dataclass
class BallotTotals:
    """What a ballot's leaves add up to nationally: TPS counted, invalid, voters and votes per
    choice."""

    tps: int = 0
    invalid: int = 0
    voters: int = 0
    votes: dict[str, int] = field(default_factory=dict)

    def add(self, tps: int, invalid: int, voters: int, votes: Mapping[str, int]) -> None:
        self.tps += tps
        self.invalid += invalid
        self.voters += voters
        for choice, n in votes.items():
            self.votes[choice] = self.votes.get(choice, 0) + n

    def line(self, ballot: str) -> str:
        votes = " ".join(f"{c}={n}" for c, n in sorted(self.votes.items()) if n)
        return (
            f"{ballot} tps={self.tps} invalid={self.invalid} "
            f"voters={self.voters}{' ' + votes if votes else ''}"
        )

    @classmethod
    def parse(cls, line: str) -> tuple[str, BallotTotals]:
        ballot, *fields = line.split(" ")
        values = dict(f.split("=", 1) for f in fields)
        totals = cls(int(values.pop("tps")), int(values.pop("invalid")), int(values.pop("voters")))
        totals.votes = {c: int(n) for c, n in values.items()}
        return ballot, totals


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    totals: dict[str, BallotTotals]

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        lines += [self.totals[b].line(b) for b in sorted(self.totals)]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        origin, size, root, *extensions = text.rstrip("\n").split("\n")
        totals = dict(BallotTotals.parse(line) for line in extensions)
        return cls(origin, int(size), base64.b64decode(root, validate=True), totals)


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The signed-note verifier key text: <name>+<hex key id>+<base64(0x01 || public key)>."""
    return (
        f"{name}+{key_id(name, public_key).hex()}+{base64.b64encode(ED25519 + public_key).decode()}"
    )


def public_key_of(seed: bytes) -> bytes:
    return crypto_sign_seed_keypair(seed)[0]


def sign_note(text: str, name: str, seed: bytes) -> str:
    """The signed note: the text, a blank line, and one signature line by the operator's key."""
    public, secret = crypto_sign_seed_keypair(seed)
    signature = crypto_sign(text.encode(), secret)[:64]
    return f"{text}\n\u2014 {name} {base64.b64encode(key_id(name, public) + signature).decode()}\n"


class NoteError(ValueError):
    """A note that is malformed, or not signed by the key given."""


def open_note(note: str, name: str, public_key: bytes) -> str:
    """The text of a note signed by `name` with `public_key`, or a NoteError."""
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise NoteError("not a signed note: no blank line before the signatures")
    text += "\n"
    wanted = key_id(name, public_key)
    for line in signatures.splitlines():
        prefix = f"\u2014 {name} "
        if not line.startswith(prefix):
            continue
        raw = base64.b64decode(line[len(prefix) :], validate=True)
        if raw[:4] != wanted:
            continue
        try:
            crypto_sign_open(raw[4:] + text.encode(), public_key)
        except BadSignatureError:
            raise NoteError(f"the signature of {name} does not match the note") from None
        return text
    raise NoteError(f"no signature by {name} (key id {wanted.hex()}) on the note")
