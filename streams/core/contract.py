"""Stage 1, decode: the wire contract `tally.v1` and its structural checks.

One Kafka message = one UTF-8 JSON object; see schemas/tally.v1.schema.json and docs/wire-format.md.
`decode_tally` turns bytes into a `Tally` or a list of findings with the MALFORMED or SCHEMA code,
each naming the field path. Two paths, which tests hold to the published JSON Schema and to each
other:
  * the fast one: `_Shape`, the contract as msgspec types, decoded and checked from the bytes in one
    pass in C; nearly every event conforms, and this path costs about half of parsing into dicts and
    checking those;
  * `decode_object` (the reference): orjson's dicts, `check_structure` (hand-written) to name every
    finding where msgspec stops at the first. It decides every event the fast path refuses, so a
    refusal costs time, never a different answer.

A tally also carries its canonical forms (`Forms`): the bytes its device signed, the same with the
signature (the transparency log's leaf) and the digest of its counts. The fast path writes them from
the typed values, the counts encoded once; the reference writes them with orjson from the dict.
Tests hold the two to the same bytes (msgspec and orjson escape every code point alike).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec
import orjson

from streams.core.reasons import Finding, Reason

SCHEMA_V1 = "tally.v1"
MAX_EVENT_BYTES = 64 * 1024
MAX_COUNT = 1_000_000
BALLOTS = ("PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB")
CATEGORIES = ("dpt", "dptb", "dpk")

_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TPS = re.compile(r"[0-9]{13}")  # not \d, which also matches the digits of other scripts
_CHOICE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_REQUIRED = (
    "schema",
    "event_id",
    "tps",
    "ballot",
    "revision",
    "submitted_at",
    "gateway",
    "voters",
    "ballots",
    "votes",
    "invalid",
)
_OPTIONAL = ("sig", "key_id")
_BALLOT_COUNTS = ("received", "returned", "unused", "used")


def _whole(pattern: re.Pattern[str]) -> str:
    """The hand-written checks' pattern for msgspec, which searches: anchored at both ends."""
    return rf"^{pattern.pattern}\Z"


_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class _Categories(msgspec.Struct, forbid_unknown_fields=True):
    dpt: _Count
    dptb: _Count
    dpk: _Count


class _Voters(msgspec.Struct, forbid_unknown_fields=True):
    registered: _Categories
    voted: _Categories


class _Ballots(msgspec.Struct, forbid_unknown_fields=True):
    received: _Count
    returned: _Count
    unused: _Count
    used: _Count


class _Shape(msgspec.Struct, forbid_unknown_fields=True):
    """tally.v1 as msgspec types: the fast yes/no of `decode_tally`. Choice codes are checked apart,
    all in one regex call (`_CHOICES`): a pattern on the dict's keys costs a call per choice, and a
    DPR tally has ~150 of them."""

    schema: Literal[SCHEMA_V1]
    event_id: Annotated[str, msgspec.Meta(pattern=_whole(_EVENT_ID))]
    tps: Annotated[str, msgspec.Meta(pattern=_whole(_TPS))]
    ballot: Literal[BALLOTS]
    revision: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    submitted_at: str
    gateway: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    voters: _Voters
    ballots: _Ballots
    votes: Annotated[dict[str, _Count], msgspec.Meta(min_length=1)]
    invalid: _Count
    sig: str | msgspec.UnsetType = msgspec.UNSET
    key_id: str | msgspec.UnsetType = msgspec.UNSET


# every choice code, joined by NUL
_CHOICES = re.compile(rf"{_CHOICE.pattern}(?:\x00{_CHOICE.pattern})*")
# Choice codes already matched by `_CHOICES`: a set lookup of an event's codes (1.7 us a five-ballot
# event) instead of the regex over them all (7.2 us). A code matches or not whatever codes it is
# joined with, so a code seen once need not be matched again. Bounded (a country has a few thousand
# codes; junk must not grow a worker): past the bound, unseen codes go through the regex as before.
_MATCHED: set[str] = set()
_MATCHED_LIMIT = 100_000


def _choices_conform(votes: dict[str, int]) -> bool:
    if _MATCHED.issuperset(votes):
        return True
    if _CHOICES.fullmatch("\x00".join(votes)) is None:
        return False
    if len(_MATCHED) < _MATCHED_LIMIT:
        _MATCHED.update(votes)
    return True


def conforms(obj: dict) -> bool:
    """True if the decoded object is a tally.v1 event, with nothing to report."""
    try:
        msgspec.convert(obj, _Shape)
    except msgspec.ValidationError:
        return False
    return _CHOICES.fullmatch("\x00".join(obj["votes"])) is not None


# The top-level fields that are not the counts themselves: who sent them, when, and the signature.
_IDENTITY = ("event_id", "submitted_at", "gateway", "sig", "key_id")
# RFC 8785 for tally.v1's values, as orjson's OPT_SORT_KEYS
_SORTED = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(_Shape)


@dataclass(frozen=True, slots=True)
class Forms:
    """A tally's canonical bytes (core.signatures): made once at decoding, used by every later
    stage."""

    signed: bytes  # the event without `sig`, keys sorted, compact: what the device signed
    event: bytes  # the same with `sig`: the transparency log's leaf
    digest: str  # identity of the counts, independent of who sent them and when (for CONFLICT)


def _digest(counts: bytes) -> str:
    return hashlib.blake2b(counts, digest_size=16).hexdigest()


def forms_of(obj: dict) -> Forms:
    """The reference: orjson's canonical bytes of a decoded JSON object, each made whole."""
    signed = orjson.dumps({k: v for k, v in obj.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)
    counts = {k: v for k, v in obj.items() if k not in _IDENTITY}
    event = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) if "sig" in obj else signed
    return Forms(signed, event, _digest(orjson.dumps(counts, option=orjson.OPT_SORT_KEYS)))


def _forms_of_shape(shape: _Shape) -> Forms:
    """The same bytes from the typed values, each value encoded once and the forms joined from the
    pieces, in the sorted order of tally.v1's top-level keys (which is fixed): ballot, ballots,
    event_id, gateway, invalid, key_id, revision, schema, sig, submitted_at, tps, voters, votes."""
    encode = _SORTED.encode
    head = b'{"ballot":' + encode(shape.ballot) + b',"ballots":' + encode(shape.ballots)
    invalid = b',"invalid":%d' % shape.invalid
    revision = b',"revision":%d,"schema":' % shape.revision + encode(shape.schema)
    tail = (
        b',"tps":'
        + encode(shape.tps)
        + b',"voters":'
        + encode(shape.voters)
        + b',"votes":'
        + encode(shape.votes)
        + b"}"
    )
    sender = b',"event_id":' + encode(shape.event_id) + b',"gateway":' + encode(shape.gateway)
    key_id = b"" if shape.key_id is msgspec.UNSET else b',"key_id":' + encode(shape.key_id)
    submitted_at = b',"submitted_at":' + encode(shape.submitted_at)
    digest = _digest(b"".join((head, invalid, revision, tail)))
    signed = b"".join((head, sender, invalid, key_id, revision, submitted_at, tail))
    if shape.sig is msgspec.UNSET:
        return Forms(signed, signed, digest)
    sig = b',"sig":' + encode(shape.sig)
    return Forms(
        signed, b"".join((head, sender, invalid, key_id, revision, sig, submitted_at, tail)), digest
    )


@dataclass(frozen=True, slots=True)
class Tally:
    """One C1 form for one ballot at one TPS, as a gateway submitted it."""

    event_id: str
    tps: str
    ballot: str
    revision: int
    submitted_at: str
    gateway: str
    registered: dict[str, int]
    voted: dict[str, int]
    ballots: dict[str, int]
    votes: dict[str, int]
    invalid: int
    # no default: an empty digest would match another
    forms: Forms = field(repr=False, compare=False)
    sig: str | None = None
    key_id: str | None = None

    @property
    def valid(self) -> int:
        return sum(self.votes.values())

    @property
    def voters(self) -> int:
        return sum(self.voted.values())

    @property
    def digest(self) -> str:
        return self.forms.digest


@dataclass(frozen=True, slots=True)
class Decoded:
    """The outcome of decoding: a tally, or the findings that stop it (and what could be read)."""

    tally: Tally | None
    findings: tuple[Finding, ...]
    event_id: str | None = None
    tps: str | None = None
    ballot: str | None = None
    gateway: str | None = None
    key_id: str | None = None


def decode_tally(payload: bytes) -> Decoded:
    if len(payload) > MAX_EVENT_BYTES:
        return Decoded(
            None, (Finding(Reason.MALFORMED, "$", f"{len(payload)} bytes > {MAX_EVENT_BYTES}"),)
        )
    try:
        shape = _DECODER.decode(payload)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return decode_object(payload)
    if not _choices_conform(shape.votes):
        return decode_object(payload)
    voters = shape.voters
    tally = Tally(
        event_id=shape.event_id,
        tps=shape.tps,
        ballot=shape.ballot,
        revision=shape.revision,
        submitted_at=shape.submitted_at,
        gateway=shape.gateway,
        registered=msgspec.structs.asdict(voters.registered),
        voted=msgspec.structs.asdict(voters.voted),
        ballots=msgspec.structs.asdict(shape.ballots),
        votes=shape.votes,
        invalid=shape.invalid,
        sig=None if shape.sig is msgspec.UNSET else shape.sig,
        key_id=None if shape.key_id is msgspec.UNSET else shape.key_id,
        forms=_forms_of_shape(shape),
    )
    return Decoded(tally, (), tally.event_id, tally.tps, tally.ballot, tally.gateway, tally.key_id)


def decode_object(payload: bytes) -> Decoded:
    """The reference path: orjson's dicts, checked by msgspec and, where it refuses, by hand."""
    if len(payload) > MAX_EVENT_BYTES:
        return Decoded(
            None, (Finding(Reason.MALFORMED, "$", f"{len(payload)} bytes > {MAX_EVENT_BYTES}"),)
        )
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Decoded(None, (Finding(Reason.MALFORMED, "$", f"not UTF-8 JSON: {exc}"),))
    if not isinstance(obj, dict):
        return Decoded(
            None, (Finding(Reason.MALFORMED, "$", f"a JSON {type(obj).__name__}, not an object"),)
        )
    if conforms(obj):
        return _conforming(obj)
    return check_structure(obj)


def _conforming(obj: dict) -> Decoded:
    key_id = obj.get("key_id")
    voters = obj["voters"]
    tally = Tally(
        event_id=obj["event_id"],
        tps=obj["tps"],
        ballot=obj["ballot"],
        revision=obj["revision"],
        submitted_at=obj["submitted_at"],
        gateway=obj["gateway"],
        registered=voters["registered"],
        voted=voters["voted"],
        ballots=obj["ballots"],
        votes=obj["votes"],
        invalid=obj["invalid"],
        sig=obj.get("sig"),
        key_id=key_id,
        forms=forms_of(obj),
    )
    return Decoded(tally, (), tally.event_id, tally.tps, tally.ballot, tally.gateway, key_id)


def _is_count(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_COUNT


def _counts(obj: object, path: str, keys: tuple[str, ...], findings: list[Finding]) -> None:
    """Findings of an object of counts with exactly `keys`."""
    if not isinstance(obj, dict):
        findings.append(Finding(Reason.SCHEMA, path, "must be an object"))
        return
    for key in keys:
        if key not in obj:
            findings.append(Finding(Reason.SCHEMA, f"{path}.{key}", "missing"))
        elif not _is_count(obj[key]):
            findings.append(
                Finding(
                    Reason.SCHEMA,
                    f"{path}.{key}",
                    f"must be an integer 0..{MAX_COUNT}, got {obj[key]!r}",
                )
            )
    for key in obj:
        if key not in keys:
            findings.append(Finding(Reason.SCHEMA, f"{path}.{key}", "unknown field"))


def check_structure(obj: dict) -> Decoded:
    """Every SCHEMA finding of a decoded JSON object (all of them, not only the first). The slow
    path: `decode_tally` calls it only for objects that do not conform."""
    # Long because it reads as the schema: one check a field, in the schema's order, each naming
    # its finding; split up, a field's rule would be looked for in several places.
    findings: list[Finding] = []
    for key in _REQUIRED:
        if key not in obj:
            findings.append(Finding(Reason.SCHEMA, f"$.{key}", "missing"))
    for key in obj:
        if key not in _REQUIRED and key not in _OPTIONAL:
            findings.append(Finding(Reason.SCHEMA, f"$.{key}", "unknown field"))

    def text(
        key: str, pattern: re.Pattern[str] | None = None, choices: tuple[str, ...] = ()
    ) -> str | None:
        value = obj.get(key)
        if key not in obj:
            return None
        if not isinstance(value, str):
            findings.append(Finding(Reason.SCHEMA, f"$.{key}", f"must be a string, got {value!r}"))
            return None
        if pattern is not None and not pattern.fullmatch(value):
            findings.append(
                Finding(Reason.SCHEMA, f"$.{key}", f"{value!r} does not match {pattern.pattern}")
            )
            return None
        if choices and value not in choices:
            findings.append(
                Finding(Reason.SCHEMA, f"$.{key}", f"{value!r} is not one of {', '.join(choices)}")
            )
            return None
        return value

    schema = text("schema", choices=(SCHEMA_V1,))
    event_id = text("event_id", _EVENT_ID)
    tps = text("tps", _TPS)
    ballot = text("ballot", choices=BALLOTS)
    text("submitted_at")
    gateway = text("gateway")
    if gateway is not None and not 1 <= len(gateway) <= 64:
        findings.append(Finding(Reason.SCHEMA, "$.gateway", "must be 1-64 characters"))
    for key in _OPTIONAL:
        if key in obj and not isinstance(obj[key], str):
            findings.append(Finding(Reason.SCHEMA, f"$.{key}", "must be a string"))
    revision = obj.get("revision")
    if "revision" in obj and not (type(revision) is int and 1 <= revision <= 2**31 - 1):
        findings.append(
            Finding(Reason.SCHEMA, "$.revision", f"must be an integer >= 1, got {revision!r}")
        )
    invalid = obj.get("invalid")
    if "invalid" in obj and not _is_count(invalid):
        findings.append(
            Finding(
                Reason.SCHEMA, "$.invalid", f"must be an integer 0..{MAX_COUNT}, got {invalid!r}"
            )
        )

    voters = obj.get("voters")
    if "voters" in obj:
        if isinstance(voters, dict):
            for key in voters:
                if key not in ("registered", "voted"):
                    findings.append(Finding(Reason.SCHEMA, f"$.voters.{key}", "unknown field"))
            for key in ("registered", "voted"):
                if key not in voters:
                    findings.append(Finding(Reason.SCHEMA, f"$.voters.{key}", "missing"))
            _counts(voters.get("registered", {}), "$.voters.registered", CATEGORIES, findings)
            _counts(voters.get("voted", {}), "$.voters.voted", CATEGORIES, findings)
        else:
            findings.append(Finding(Reason.SCHEMA, "$.voters", "must be an object"))
    if "ballots" in obj:
        _counts(obj["ballots"], "$.ballots", _BALLOT_COUNTS, findings)
    votes = obj.get("votes")
    if "votes" in obj:
        if not isinstance(votes, dict) or not votes:
            findings.append(
                Finding(Reason.SCHEMA, "$.votes", "must be a non-empty object of choice -> count")
            )
        else:
            for choice, count in votes.items():
                if not _CHOICE.fullmatch(choice):
                    findings.append(
                        Finding(
                            Reason.SCHEMA,
                            f"$.votes.{choice}",
                            "choice code must match [A-Za-z0-9_.-]{1,32}",
                        )
                    )
                elif not _is_count(count):
                    findings.append(
                        Finding(
                            Reason.SCHEMA,
                            f"$.votes.{choice}",
                            f"must be an integer 0..{MAX_COUNT}, got {count!r}",
                        )
                    )

    key_id = obj.get("key_id")
    seen = {
        "event_id": event_id,
        "tps": tps,
        "ballot": ballot,
        "gateway": gateway,
        "key_id": key_id if isinstance(key_id, str) else None,
    }
    if findings or schema is None:
        return Decoded(None, tuple(findings), **seen)
    return _conforming(obj)
