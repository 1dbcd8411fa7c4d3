"""The exact truth a simulated night must add up to: the last applied tally of every (ballot, TPS),
summed per region at every level and written as JSON lines for `tally verify`."""

from __future__ import annotations

import io
import itertools
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from streams.core.regions import region_of
from streams.core.seats import (
    DPR_THRESHOLD,
    LEGISLATIVE,
    party_totals,
    reported_votes,
)

TRUTH, TRUTH_TPS = "truth.jsonl", "truth-tps.jsonl"  # written by `tally simulate --out`
# a truth line each; finer levels a line per province
WHOLE_LEVELS = (
    "national",
    "province",
    "regency",
)


class TruthEntry(NamedTuple):
    """The last applied tally of one (ballot, TPS), kept small: five ballots are 4.1M of them."""

    event_id: str
    choices: tuple[str, ...]  # shared by every TPS of a contest
    counts: array  # 'H': a count is at most a TPS's DPT (<= 300); 2 bytes, not a Python int each
    invalid: int
    dapil: str  # shared by every TPS of a contest


def _reported(ballot: str, level: str, regions: dict[str, dict]) -> dict[str, dict]:
    """Regions with their votes as results report them (`reported_votes`: party totals, not
    candidates summed across dapils)."""
    for region in regions.values():
        region["votes"] = reported_votes(ballot, level, region["votes"])
    return regions


def _add(into: dict, votes: Iterable[tuple[str, int]], invalid: int, reported: int) -> None:
    summed = into["votes"]
    for choice, n in votes:
        summed[choice] = summed.get(choice, 0) + n
    into["invalid"] += invalid
    into["tps_reported"] += reported


@dataclass
class Truth:
    """Exact expected results: per ballot and level, region -> votes, invalid, tps_reported,
    tps_total."""

    current: dict[tuple[str, str], TruthEntry] = field(default_factory=dict)
    tps_total: dict[tuple[str, str, str], int] = field(default_factory=dict)
    contests: list[dict] = field(default_factory=list)  # the registry's, for dapil seats and bodies
    threshold: Fraction = DPR_THRESHOLD

    def record(self, tally: dict, choices: tuple[str, ...], dapil: str) -> None:
        votes = tally["votes"]
        self.current[(tally["ballot"], tally["tps"])] = TruthEntry(
            tally["event_id"],
            choices,
            array("H", [votes[c] for c in choices]),
            tally["invalid"],
            dapil,
        )

    def write_files(self, out: Path) -> None:
        """The truth of a simulated night as `verify` reads it: `truth.jsonl`, the lines of
        `write_lines` without the TPS level and the votes of districts and villages, and
        `truth-tps.jsonl` (`write_tps`), which verify loads into ClickHouse and compares there
        (read.verify_tps): held in Python, five ballots' TPS level was 4.1M dicts, and verify took
        7.5 minutes."""
        with (out / TRUTH).open("wb") as fh:
            self.write_lines(fh, fine=False)
        with (out / TRUTH_TPS).open("wb") as fh:
            self.write_tps(fh)

    def write_tps(self, fh: IO[bytes]) -> None:
        """One line per counted (ballot, TPS): {"ballot", "tps", "event_id", "dapil", "counts",
        "invalid"}, the counts in the order of its dapil's choices (the "choices" line of
        `write_lines`): a third of the bytes of a votes object, for ClickHouse's JSONEachRow."""
        for (ballot, tps), entry in sorted(self.current.items()):
            line = {"ballot": ballot, "tps": tps, "event_id": entry.event_id, "dapil": entry.dapil}
            fh.write(
                orjson.dumps({**line, "counts": entry.counts.tolist(), "invalid": entry.invalid})
                + b"\n"
            )

    def write_lines(self, fh: IO[bytes], fine: bool = True) -> None:
        """The truth as JSON lines, one group of regions a line: {"ballot", "level", "scope",
        "regions": {code: {votes, invalid, tps_reported[, tps_total]}}}. National, province and
        regency come whole (scope ""); district, village and TPS one province at a time (scope = its
        code), so that `verify` never holds more than a province of TPS (five ballots are 4.1M of
        them).

        Without `fine`, a province's districts and villages are only {"tps_total": {code: n}} and
        its TPS are left to `write_tps`; each ballot gets a line {"level": "choices", "choices":
        {dapil: [code, ...]}} to read `write_tps`'s counts by.

        Summed a province at a time too (`_province`), and its districts into the whole levels,
        which are all that outlives a province (~550 regions)."""
        for ballot in sorted({ballot for ballot, _ in self.current}):
            if not fine:
                choices = {e.dapil: e.choices for (b, _), e in self.current.items() if b == ballot}
                _write(fh, {"ballot": ballot, "level": "choices", "scope": "", "choices": choices})
            whole: dict[str, dict[str, dict]] = {level: {} for level in WHOLE_LEVELS}
            codes = sorted(tps for b, tps in self.current if b == ballot)
            for province, in_province in itertools.groupby(codes, key=lambda tps: tps[:2]):
                tps_regions, fine_regions = self._province(ballot, in_province)
                for code, district in fine_regions["district"].items():
                    for level in WHOLE_LEVELS:
                        into = self._region(whole[level], ballot, level, region_of(code, level))
                        votes = district["votes"].items()
                        _add(into, votes, district["invalid"], district["tps_reported"])
                for line in _province_lines(ballot, province, tps_regions, fine_regions, fine):
                    _write(fh, line)
            for level in WHOLE_LEVELS:
                regions = _reported(ballot, level, dict(sorted(whole[level].items())))
                _write(fh, {"ballot": ballot, "level": level, "scope": "", "regions": regions})
            if ballot in LEGISLATIVE:
                for line in self._dapil_lines(ballot):
                    _write(fh, line)

    def _dapil_lines(self, ballot: str) -> list[dict]:
        """A legislative ballot's dapils (votes per choice, party totals, TPS), summed here from the
        tallies, apart from the read side's queries; and the threshold its seats are elected
        with."""
        summed: dict[str, list] = {}  # dapil -> [counts by choice, invalid, reported]
        choices_of: dict[str, tuple[str, ...]] = {}
        for (b, _), entry in self.current.items():
            if b != ballot:
                continue
            into = summed.get(entry.dapil)
            if into is None:
                summed[entry.dapil] = [list(entry.counts), entry.invalid, 1]
                choices_of[entry.dapil] = entry.choices
            else:
                into[0] = [a + n for a, n in zip(into[0], entry.counts, strict=True)]
                into[1] += entry.invalid
                into[2] += 1
        dapils = {}
        for contest in (c for c in self.contests if c["ballot"] == ballot):
            code = contest["dapil"]
            counts, invalid, reported = summed.get(code, [None, 0, 0])
            votes = dict(zip(choices_of[code], counts, strict=True)) if counts else {}
            dapils[code] = {
                "votes": votes,
                "parties": party_totals(votes),
                "invalid": invalid,
                "tps_reported": reported,
                "tps_total": self.tps_total.get((ballot, "dapil", code), 0),
            }
        threshold = self.threshold if ballot == "DPR" else None
        return [
            {
                "ballot": ballot,
                "level": "dapil",
                "scope": "",
                "regions": dict(sorted(dapils.items())),
            },
            # What seats follow from besides the dapils' votes above (and the contests in the
            # registry): the read side elects from them (read.results.verify).
            {
                "ballot": ballot,
                "level": "seats",
                "scope": "",
                "threshold": None if threshold is None else float(threshold),
            },
        ]

    def _region(self, regions: dict[str, dict], ballot: str, level: str, code: str) -> dict:
        """The running sum of one region in `regions`, started empty with its TPS total."""
        if code not in regions:
            total = self.tps_total.get((ballot, level, code), 0)
            regions[code] = {"votes": {}, "invalid": 0, "tps_reported": 0, "tps_total": total}
        return regions[code]

    def _province(
        self, ballot: str, codes: Iterable[str]
    ) -> tuple[dict[str, dict], dict[str, dict[str, dict]]]:
        """One province's TPS, villages and districts of a ballot. TPS are summed into villages as
        count vectors (a village lies in one dapil, so its TPS share one choice tuple)."""
        tps_regions: dict[str, dict] = {}
        villages: dict[
            tuple[str, tuple[str, ...]], list
        ] = {}  # (village, choices) -> [counts, invalid, reported]
        for tps in codes:
            entry = self.current[(ballot, tps)]
            votes = dict(zip(entry.choices, entry.counts, strict=True))
            tps_regions[tps] = {"votes": votes, "invalid": entry.invalid, "tps_reported": 1}
            summed = villages.get((tps[:10], entry.choices))
            if summed is None:
                villages[(tps[:10], entry.choices)] = [list(entry.counts), entry.invalid, 1]
            else:
                summed[0] = [a + b for a, b in zip(summed[0], entry.counts, strict=True)]
                summed[1] += entry.invalid
                summed[2] += 1
        fine: dict[str, dict[str, dict]] = {"district": {}, "village": {}}
        for (village, choices), (counts, invalid, reported) in villages.items():
            for level in ("village", "district"):
                into = self._region(fine[level], ballot, level, region_of(village, level))
                _add(into, zip(choices, counts, strict=True), invalid, reported)
        return tps_regions, fine

    def groups(self) -> list[dict]:
        """The lines of `write_lines`, decoded (for tests and small runs)."""
        buffer = io.BytesIO()
        self.write_lines(buffer)
        return [orjson.loads(line) for line in buffer.getvalue().splitlines()]

    def as_json(self) -> dict:
        return merge_truth(self.groups())


def _write(fh: IO[bytes], line: dict) -> None:
    fh.write(orjson.dumps(line) + b"\n")


def _province_lines(
    ballot: str,
    province: str,
    tps_regions: dict[str, dict],
    fine_regions: dict[str, dict[str, dict]],
    fine: bool,
) -> list[dict]:
    """One province's district and village lines (their TPS totals only, without `fine`) and,
    with `fine`, its TPS line."""
    lines = []
    for level in ("district", "village"):
        if not fine:
            totals = {code: r["tps_total"] for code, r in sorted(fine_regions[level].items())}
            lines.append({"ballot": ballot, "level": level, "scope": province, "tps_total": totals})
            continue
        regions = _reported(ballot, level, dict(sorted(fine_regions[level].items())))
        lines.append({"ballot": ballot, "level": level, "scope": province, "regions": regions})
    if fine:
        lines.append({"ballot": ballot, "level": "tps", "scope": province, "regions": tps_regions})
    return lines


def merge_truth(groups: Iterable[dict]) -> dict:
    """{"ballots": {ballot: {level: {region: ...}}}}: truth groups merged (for tests and small
    runs)."""
    merged: dict = {"ballots": {}}
    for group in groups:
        levels = merged["ballots"].setdefault(group["ballot"], {})
        if group["level"] == "seats":
            levels["seats"] = {"threshold": group["threshold"]}
        # not the choices, nor a fine level's TPS totals (write_lines without fine)
        elif "regions" in group:
            levels.setdefault(group["level"], {}).update(group["regions"])
    return merged
