"""Stage 3's memory: the applied tally of every (ballot, TPS) key of a worker's partitions, packed.

A worker holds one entry per key of the partitions it owns: at national scale 4.1M keys (five
ballots) across the group. As `Applied` objects a legislative key cost ~1.7 KiB, most of it a tuple
of ~150 counts; here a key is one bytes record (a fixed header, the counts at the narrowest width
that holds them, the event ids) under one int key, and becomes an `Applied` again on lookup.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping

from streams.core.contract import BALLOTS
from streams.core.revisions import Applied, shared_choices

Key = tuple[str, str]  # (ballot, tps)

# revision, voters, invalid, index of the choice tuple, bytes per count, flags, digest (16 raw
# bytes)
_HEADER = struct.Struct("<IIIIBB16s")
_TYPECODE = {1: "B", 2: "H", 4: "I"}
_LAST_IS_CURRENT = 1  # flag: event_ids ends with event_id, which is then not stored twice
_BALLOT_INDEX = {ballot: i for i, ballot in enumerate(BALLOTS)}  # < 8: three bits of the int key
_SEPARATOR = "\x00"  # no event_id contains it (tally.v1: [A-Za-z0-9_.:-]{1,64})

# Every choice tuple a record points at, by index; the tuples are the shared ones of `revisions`,
# which live as long as the process, so their id() is a stable key.
_CHOICE_TUPLES: list[tuple[str, ...]] = []
_INDEX_OF_TUPLE: dict[int, int] = {}


def _choice_index(choices: tuple[str, ...]) -> int:
    index = _INDEX_OF_TUPLE.get(id(choices))
    if index is None:
        shared = shared_choices(choices)
        index = _INDEX_OF_TUPLE.get(id(shared))
        if index is None:
            index = _INDEX_OF_TUPLE[id(shared)] = len(_CHOICE_TUPLES)
            _CHOICE_TUPLES.append(shared)
    return index


def _width(counts: tuple[int, ...]) -> int:
    top = max(counts, default=0)
    return 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4


def pack(applied: Applied) -> bytes:
    width = _width(applied.counts)
    ids = applied.event_ids
    flags = _LAST_IS_CURRENT if ids and ids[-1] == applied.event_id else 0
    header = _HEADER.pack(
        applied.revision,
        applied.voters,
        applied.invalid,
        _choice_index(applied.choices),
        width,
        flags,
        bytes.fromhex(applied.digest),
    )
    tail = _SEPARATOR.join(ids if flags else (applied.event_id, *ids)).encode()
    return header + array(_TYPECODE[width], applied.counts).tobytes() + tail


def unpack(ballot: str, tps: str, record: bytes) -> Applied:
    revision, voters, invalid, index, width, flags, digest = _HEADER.unpack_from(record)
    choices = _CHOICE_TUPLES[index]
    end = _HEADER.size + len(choices) * width
    counts = tuple(array(_TYPECODE[width], record[_HEADER.size : end]))
    ids = record[end:].decode().split(_SEPARATOR)
    event_id, event_ids = (
        (ids[-1], tuple(ids)) if flags & _LAST_IS_CURRENT else (ids[0], tuple(ids[1:]))
    )
    return Applied(
        tps, ballot, revision, event_id, digest.hex(), choices, counts, invalid, voters, event_ids
    )


def _key(key: Key) -> int:
    """One small int, not a (ballot, tps) tuple or a string: a TPS code is 13 digits (< 2**44)."""
    ballot, tps = key
    return int(tps) << 3 | _BALLOT_INDEX[ballot]


class AppliedState:
    """(ballot, tps) -> Applied, held packed. Only what the pipeline needs of a mapping."""

    def __init__(self) -> None:
        self._records: dict[int, bytes] = {}

    def get(self, key: Key) -> Applied | None:
        record = self._records.get(_key(key))
        return None if record is None else unpack(key[0], key[1], record)

    def voters(self, key: Key) -> int | None:
        """The applied voter count alone (the cross-ballot check needs only it)."""
        record = self._records.get(_key(key))
        return None if record is None else _HEADER.unpack_from(record)[1]

    def __setitem__(self, key: Key, applied: Applied) -> None:
        self._records[_key(key)] = pack(applied)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and key[0] in _BALLOT_INDEX and _key(key) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Key]:
        return ((BALLOTS[k & 7], f"{k >> 3:013d}") for k in self._records)

    def update(self, entries: Mapping[Key, Applied] | Iterable[tuple[Key, Applied]]) -> None:
        for key, applied in entries.items() if isinstance(entries, Mapping) else entries:
            self[key] = applied

    def clear(self) -> None:
        self._records.clear()
