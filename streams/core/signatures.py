"""Stage 2a, authenticity: a tally counts only when signed by its own TPS's device key (Ed25519).

What a device signs (the canonical form): the event as a JSON object without `sig`, keys sorted at
every level, no whitespace, UTF-8 with non-ASCII characters unescaped: orjson's output with
OPT_SORT_KEYS. For tally.v1's values (integers, strings, arrays, objects) this is RFC 8785 (JCS), so
a device in any language can produce it. `key_id` is part of the signed form; `sig` is the 64-byte
signature in standard base64.

Keys live in the registry (`{"type": "key", ...}` records) with a validity window, checked against
the signed `submitted_at`, and a revocation time, checked against the time the gateway received the
event (the Kafka timestamp): a thief holding a revoked key can backdate `submitted_at` but not that.
"""

from __future__ import annotations

import binascii
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from nacl.bindings import crypto_sign_BYTES, crypto_sign_open
from nacl.exceptions import BadSignatureError

from streams.core.contract import Tally
from streams.core.packed import Indexed, IntIndex, tps_number
from streams.core.reasons import Finding, Reason


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """One TPS device's public key, as the registry holds it."""

    tps: str
    public_key: bytes  # 32 bytes
    valid_from: float | None = None  # epoch seconds; None: no bound
    valid_until: float | None = None
    revoked_at: float | None = None


Window = tuple[float | None, float | None, float | None]  # valid_from, valid_until, revoked_at


class KeyRing(Indexed):
    """The registry's device keys, compactly: every worker holds all of them (820k in 2024).

    A key named as devices are, `<TPS code>.<n>`, is a row of columns under one int (an `IntIndex`):
    the public key, an index into the few distinct validity windows, the TPS as an int; ~56 B a key,
    where a dict of packed bytes records cost ~180 B and a DeviceKey object ~350 B (a TPS that is
    not 13 digits is kept as text beside). A key named any other way is such a bytes record in a
    dict. Unpacked on lookup."""

    def __init__(self, keys: Iterable[tuple[str, DeviceKey]] = ()) -> None:
        self._index = IntIndex()
        self._public = bytearray()  # 32 bytes a row
        self._window = array("I")
        self._tps = array("q")
        self._odd_tps: list[str] = []
        self._others: dict[str, bytes] = {}
        self._windows: list[Window] = []
        self._window_index: dict[Window, int] = {}
        for key_id, key in keys:
            self.add(key_id, key)
        self.seal()

    def add(self, key_id: str, key: DeviceKey) -> None:
        window = (key.valid_from, key.valid_until, key.revoked_at)
        index = self._window_index.get(window)
        if index is None:
            index = self._window_index[window] = len(self._windows)
            self._windows.append(window)
        number = _key_number(key_id)
        if number is not None:
            self._index.add(number, len(self._window))
            self._public += key.public_key
            self._window.append(index)
            code = tps_number(key.tps)
            if code is not None:
                self._tps.append(code)
            else:  # not a valid TPS code (its events are rejected WRONG_TPS_KEY), kept as it is
                self._tps.append(-1 - len(self._odd_tps))
                self._odd_tps.append(key.tps)
        else:
            self._others[key_id] = key.public_key + index.to_bytes(4, "little") + key.tps.encode()

    def get(self, key_id: str) -> DeviceKey | None:
        found = self.lookup(key_id)
        return None if found is None else DeviceKey(found[0], found[1], *found[2])

    def lookup(self, key_id: str) -> tuple[str, bytes, Window] | None:
        """(tps, public key, window) of a key, without building a DeviceKey: the worker asks once an
        event."""
        number = _key_number(key_id)
        if number is not None:
            row = self._index.find(number)
            if row < 0:
                return None
            code = self._tps[row]
            tps = f"{code:013d}" if code >= 0 else self._odd_tps[-1 - code]
            return (
                tps,
                bytes(self._public[32 * row : 32 * row + 32]),
                self._windows[self._window[row]],
            )
        record = self._others.get(key_id)
        if record is None:
            return None
        return (
            record[36:].decode(),
            record[:32],
            self._windows[int.from_bytes(record[32:36], "little")],
        )

    def __len__(self) -> int:
        return len(self._index) + len(self._others)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyRing) and self.as_dict() == other.as_dict()

    def as_dict(self) -> dict[str, DeviceKey | None]:
        numbered = (
            f"{number >> _N_BITS:013d}.{number & _N_MASK}" for number, _ in self._index.items()
        )
        return {key_id: self.get(key_id) for key_id in (*numbered, *self._others)}


_N_BITS = 10  # a TPS code is < 10**13 < 2**44: 44 + 10 bits fit an int64
_N_MASK = (1 << _N_BITS) - 1


def _key_number(key_id: str) -> int | None:
    """`<13 digits>.<n>` (n < 1024, written without leading zeros) as one int; None for any other
    id, so that two ids never share a number (the number spells its id back exactly)."""
    tps, dot, n = key_id.partition(".")
    code = tps_number(tps)
    if (
        code is None
        or not dot
        or not (n.isascii() and n.isdigit())
        or (n[0] == "0" and n != "0")
        or len(n) > 4
    ):
        return None
    number = int(n)
    return code << _N_BITS | number if number <= _N_MASK else None


def canonical(raw: dict) -> bytes:
    """The bytes a device signs: the event without `sig`, keys sorted, compact UTF-8 JSON."""
    return orjson.dumps({k: v for k, v in raw.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS)


def epoch(text: str | None) -> float | None:
    """ISO 8601 with an offset (as in `submitted_at` and key records) to epoch seconds."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Signed:
    """What is left of a signature check once every rule but the curve arithmetic has passed: the
    Ed25519 verification itself (`verify`), which needs no Python objects and may run on another
    thread."""

    signed_message: bytes  # signature + canonical form, as libsodium's crypto_sign_open takes them
    public_key: bytes
    key_id: str

    def verify(self) -> Finding | None:
        try:
            crypto_sign_open(self.signed_message, self.public_key)
        except BadSignatureError:
            return Finding(
                Reason.BAD_SIGNATURE,
                "$.sig",
                f"does not verify under {self.key_id!r}: the event was altered after signing",
            )
        return None


def prepare_signature(
    tally: Tally, keys: KeyRing | Mapping[str, DeviceKey], required: bool, received_at: float
) -> Finding | Signed | None:
    """Every rule of `check_signature` but the Ed25519 arithmetic: None if the tally may count
    unsigned, the finding that stops it, or the `Signed` check still to run."""
    sig, key_id = tally.sig, tally.key_id
    if sig is None and key_id is None:
        return (
            Finding(
                Reason.UNSIGNED, "$.sig", "no signature; this deployment requires signed tallies"
            )
            if required
            else None
        )
    if sig is None or key_id is None:
        missing = "$.sig" if sig is None else "$.key_id"
        return Finding(Reason.UNSIGNED, missing, "`sig` and `key_id` come together")
    if isinstance(keys, KeyRing):
        found = keys.lookup(key_id)
    else:
        key = keys.get(key_id)
        found = (
            None
            if key is None
            else (key.tps, key.public_key, (key.valid_from, key.valid_until, key.revoked_at))
        )
    if found is None:
        return Finding(Reason.UNKNOWN_KEY, "$.key_id", f"{key_id!r} is not a key of the registry")
    tps, public_key, (valid_from, valid_until, revoked_at) = found
    if tps != tally.tps:
        return Finding(
            Reason.WRONG_TPS_KEY, "$.key_id", f"{key_id!r} belongs to TPS {tps}, not {tally.tps}"
        )
    if revoked_at is not None and received_at >= revoked_at:
        return Finding(
            Reason.REVOKED_KEY, "$.key_id", f"{key_id!r} was revoked before this event was received"
        )
    if valid_from is not None or valid_until is not None:
        try:
            signed_at = epoch(tally.submitted_at)
        except ValueError:
            signed_at = None
        if signed_at is None:
            return Finding(
                Reason.EXPIRED_KEY,
                "$.submitted_at",
                f"{tally.submitted_at!r} is not a time with an offset",
            )
        if (valid_from is not None and signed_at < valid_from) or (
            valid_until is not None and signed_at >= valid_until
        ):
            return Finding(
                Reason.EXPIRED_KEY,
                "$.submitted_at",
                f"{tally.submitted_at} is outside the validity of {key_id!r}",
            )
    try:
        signature = binascii.a2b_base64(sig, strict_mode=True)
    except (binascii.Error, ValueError):
        return Finding(Reason.BAD_SIGNATURE, "$.sig", "not base64")
    if len(signature) != crypto_sign_BYTES:
        return Finding(
            Reason.BAD_SIGNATURE, "$.sig", f"{len(signature)} bytes, not {crypto_sign_BYTES}"
        )
    return Signed(signature + tally.forms.signed, public_key, key_id)


def check_signature(
    tally: Tally, keys: KeyRing | Mapping[str, DeviceKey], required: bool, received_at: float
) -> Finding | None:
    """None if the tally may count; otherwise the one finding that stops it."""
    prepared = prepare_signature(tally, keys, required, received_at)
    return prepared.verify() if isinstance(prepared, Signed) else prepared
