"""Stage 3's memory: the applied tally of every (ballot, TPS) key of a worker's partitions, packed.

A worker holds one entry per key of the partitions it owns: at national scale 4.1M keys (five
ballots) across the group. As `Applied` objects a legislative key cost ~1.7 KiB, most of it a tuple
of ~150 counts; here a key is one bytes record (a fixed header, the counts at the narrowest width
that holds them, the event ids) under a short string key, and becomes an `Applied` again on lookup.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping

from streams.revisions import Applied, shared_choices

Key = tuple[str, str]  # (ballot, tps)

# revision, voters, invalid, index of the choice tuple, bytes per count, digest (16 raw bytes)
_HEADER = struct.Struct("<IIIIB16s")
_TYPECODE = {1: "B", 2: "H", 4: "I"}
_BALLOT_TAG = {"PPWP": "P", "DPR": "R", "DPD": "D", "DPRD_PROV": "V", "DPRD_KAB": "K"}
_BALLOT_OF_TAG = {tag: ballot for ballot, tag in _BALLOT_TAG.items()}
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
    header = _HEADER.pack(
        applied.revision, applied.voters, applied.invalid, _choice_index(applied.choices), width, bytes.fromhex(applied.digest)
    )
    ids = _SEPARATOR.join((applied.event_id, *applied.event_ids)).encode()
    return header + array(_TYPECODE[width], applied.counts).tobytes() + ids


def unpack(ballot: str, tps: str, record: bytes) -> Applied:
    revision, voters, invalid, index, width, digest = _HEADER.unpack_from(record)
    choices = _CHOICE_TUPLES[index]
    end = _HEADER.size + len(choices) * width
    counts = tuple(array(_TYPECODE[width], record[_HEADER.size : end]))
    event_id, *event_ids = record[end:].decode().split(_SEPARATOR)
    return Applied(tps, ballot, revision, event_id, digest.hex(), choices, counts, invalid, voters, tuple(event_ids))


def _key(key: Key) -> str:
    ballot, tps = key
    return _BALLOT_TAG[ballot] + tps


class AppliedState:
    """(ballot, tps) -> Applied, held packed. Only what the pipeline needs of a mapping."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    def get(self, key: Key) -> Applied | None:
        record = self._records.get(_key(key))
        return None if record is None else unpack(key[0], key[1], record)

    def voters(self, key: Key) -> int | None:
        """The applied voter count alone (the cross-ballot check needs only it)."""
        record = self._records.get(_key(key))
        return None if record is None else _HEADER.unpack_from(record)[1]

    def __setitem__(self, key: Key, applied: Applied) -> None:
        self._records[_key(key)] = pack(applied)

    def __getitem__(self, key: Key) -> Applied:
        applied = self.get(key)
        if applied is None:
            raise KeyError(key)
        return applied

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and _key(key) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Key]:
        return ((_BALLOT_OF_TAG[k[0]], k[1:]) for k in self._records)

    def update(self, entries: Mapping[Key, Applied] | Iterable[tuple[Key, Applied]]) -> None:
        for key, applied in entries.items() if isinstance(entries, Mapping) else entries:
            self[key] = applied

    def clear(self) -> None:
        self._records.clear()
