"""The registry: regions, TPS with their DPT, contests (which choices a TPS's ballot has), and the
public keys of the TPS devices that sign tallies.

File format (schemas/registry.v1.schema.json): JSON Lines, one record a line, each with a `type`:
  {"type": "region", "code": "35", "name": "Jawa Timur", "level": "province", "parent": "ID"}
  {"type": "tps", "code": "3510112006026", "dpt": 281}
  {"type": "contest", "ballot": "DPR", "dapil": "DPR-3501", "name": "..", "regions": ["3501", ..],
   "seats": 8, "choices": [{"code": "P01", "name": ".."}, ..]}  (seats: for legislative ballots)
  {"type": "key", "key_id": "3510112006026.1", "tps": "3510112006026",
   "public_key": "<base64, 32 bytes>", "valid_from": "2024-02-14T00:00:00+07:00",
   "valid_until": "..", "revoked_at": ".."}  (the last three optional)
Records stream (the file is read and written by `streams.gateways.registry_file`), so a national
registry (820k TPS) is read and written in bounded memory.
"""

from __future__ import annotations

import base64
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from streams.core.packed import Indexed, IntIndex, tps_number
from streams.core.signatures import DeviceKey, KeyRing, epoch


@dataclass(frozen=True, slots=True)
class Contest:
    ballot: str
    dapil: str
    name: str
    regions: tuple[str, ...]
    choices: tuple[str, ...]
    choice_names: tuple[str, ...] = ()
    seats: int = 0  # seats the dapil elects (legislative ballots); 0 for PPWP
    # The choices as a set, so that a tally's choices are held to them in one comparison in C.
    choice_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "choice_set", frozenset(self.choices))


class DptTable(Indexed, Mapping[str, int]):
    """DPT per TPS code, compactly: an `IntIndex` and the DPT column, ~16 B a TPS where a dict of
    str to int costs ~100 B (every worker holds all 823k TPS). A code that is not 13 digits (none in
    a valid registry) is kept in a dict."""

    def __init__(self, pairs: Iterable[tuple[str, int]] = ()) -> None:
        self._index = IntIndex()
        self._dpt = array("I")
        self._others: dict[str, int] = {}
        for code, dpt in pairs:
            self[code] = dpt
        self.seal()

    def __setitem__(self, code: str, dpt: int) -> None:
        number = tps_number(code)
        if number is not None:
            self._index.add(number, len(self._dpt))
            self._dpt.append(dpt)
        else:
            self._others[code] = dpt

    def get(self, code: str, default: int | None = None) -> int | None:  # type: ignore[override]
        number = tps_number(code)
        if number is not None:
            row = self._index.find(number)
            return self._dpt[row] if row >= 0 else default
        return self._others.get(code, default)

    def __getitem__(self, code: str) -> int:
        found = self.get(code)
        if found is None:
            raise KeyError(code)
        return found

    def __iter__(self) -> Iterator[str]:
        yield from (f"{code:013d}" for code, _ in self._index.items())
        yield from self._others

    def __len__(self) -> int:
        return len(self._index) + len(self._others)


@dataclass
class Registry:
    """What validation needs to know, in memory: DPT per TPS and the contest per (ballot,
    region)."""

    dpt: Mapping[str, int] = field(default_factory=DptTable)
    # (ballot, region code) -> contest; a TPS finds its contest through its own region prefixes.
    contest_by_region: dict[tuple[str, str], Contest] = field(default_factory=dict)
    keys: KeyRing = field(default_factory=KeyRing)  # key_id -> device key
    # TPS allocated more ballots than the law's DPT + 2% (the registry's `ballots`, a documented
    # exception).
    allocations: dict[str, int] = field(default_factory=dict)

    def allocation(self, tps: str, dpt: int) -> int:
        """Ballots the TPS received at most: its DPT plus 2% of it, rounded up (UU 7/2017 Pasal
        350(3): the DPT, with 2% of it as a reserve, from which DPTb and DPK voters vote too),
        unless the registry records that KPU allocated it more."""
        return self.allocations.get(tps) or dpt + (dpt * 2 + 99) // 100

    def add_contest(self, contest: Contest) -> None:
        for region in contest.regions:
            self.contest_by_region[(contest.ballot, region)] = contest

    def contest_for(self, ballot: str, tps: str) -> Contest | None:
        for n in (2, 4, 6, 10, 13):
            found = self.contest_by_region.get((ballot, tps[:n]))
            if found is not None:
                return found
        return self.contest_by_region.get((ballot, "ID"))

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> Registry:
        registry = cls()
        dpt = registry.dpt = DptTable()
        for record in records:
            kind = record.get("type")
            if kind == "tps":
                dpt[record["code"]] = int(record["dpt"])
                if record.get("ballots"):
                    registry.allocations[record["code"]] = int(record["ballots"])
            elif kind == "contest":
                registry.add_contest(contest_from_record(record))
            elif kind == "key":
                registry.keys.add(record["key_id"], key_from_record(record))
        dpt.seal()
        registry.keys.seal()
        return registry


def key_from_record(record: dict) -> DeviceKey:
    public_key = base64.b64decode(record["public_key"], validate=True)
    if len(public_key) != 32:
        raise ValueError(f"key {record['key_id']}: public_key is {len(public_key)} bytes, not 32")
    return DeviceKey(
        record["tps"],
        public_key,
        epoch(record.get("valid_from")),
        epoch(record.get("valid_until")),
        epoch(record.get("revoked_at")),
    )


def contest_from_record(record: dict) -> Contest:
    return Contest(
        ballot=record["ballot"],
        dapil=record["dapil"],
        name=record.get("name", record["dapil"]),
        regions=tuple(record["regions"]),
        choices=tuple(c["code"] for c in record["choices"]),
        choice_names=tuple(c.get("name", c["code"]) for c in record["choices"]),
        seats=int(record.get("seats", 0)),
    )
