"""The registry: regions, TPS with their DPT, and contests (which choices a TPS's ballot has).

File format (schemas/registry.v1.schema.json): JSON Lines, one record a line, each with a `type`:
  {"type": "region", "code": "35", "name": "Jawa Timur", "level": "province", "parent": "ID"}
  {"type": "tps", "code": "3510112006026", "dpt": 281}
  {"type": "contest", "ballot": "DPR", "dapil": "DPR-3501", "name": "..", "regions": ["3501", ..],
   "choices": [{"code": "P01", "name": ".."}, ..]}
Lines stream, so a national registry (820k TPS) is read and written in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson


@dataclass(frozen=True, slots=True)
class Contest:
    ballot: str
    dapil: str
    name: str
    regions: tuple[str, ...]
    choices: tuple[str, ...]
    choice_names: tuple[str, ...] = ()


@dataclass
class Registry:
    """What validation needs to know, in memory: DPT per TPS and the contest per (ballot, region)."""

    dpt: dict[str, int] = field(default_factory=dict)
    # (ballot, region code) -> contest; a TPS finds its contest through its own region prefixes.
    contest_by_region: dict[tuple[str, str], Contest] = field(default_factory=dict)

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
        for record in records:
            kind = record.get("type")
            if kind == "tps":
                registry.dpt[record["code"]] = int(record["dpt"])
            elif kind == "contest":
                registry.add_contest(contest_from_record(record))
        return registry


def contest_from_record(record: dict) -> Contest:
    return Contest(
        ballot=record["ballot"],
        dapil=record["dapil"],
        name=record.get("name", record["dapil"]),
        regions=tuple(record["regions"]),
        choices=tuple(c["code"] for c in record["choices"]),
        choice_names=tuple(c.get("name", c["code"]) for c in record["choices"]),
    )


def read_records(path: Path) -> Iterator[dict]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc


def write_records(path: Path, records: Iterable[dict]) -> int:
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")
            count += 1
    return count
