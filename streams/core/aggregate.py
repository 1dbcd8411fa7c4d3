"""Stage 4, aggregate: how an applied revision moves the running totals of every region above it.

Totals move by (new - old), a retraction of the previous revision plus the new counts, so that a
correction replaces a count instead of adding to it; `tps_reported` moves only on a first count.
Deltas of a whole batch are summed here, so one row per (ballot, level, region, choice) is written.

Counts are summed as vectors over a contest's choices (the shared choice tuple of `Applied`), per
village for each event, and rolled up once per batch, each level from the one below; the district
and village levels themselves are not written (see WRITTEN_LEVELS). A DPR tally has ~150 choices:
adding each to five levels one by one per event was most of a worker's time on legislative ballots.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from streams.core.regions import NATIONAL, PREFIX_LENGTH, region_of
from streams.core.revisions import Applied

SUMMARY = ""  # the choice key of a region's summary row: tps_reported, invalid, voters, revision
TPS_LEVEL = "tps"
# Levels written to region_totals. Districts (~110 TPS) and villages (~10 TPS) are summed from
# tally_current when read: a batch's TPS are spread over the whole country, so at ~150 choices a
# legislative tally those rows were about one per event and choice: villages were 70% of what a
# batch wrote, then districts 73% of the rest.
WRITTEN_LEVELS = ("national", "province", "regency")
# Each level rolled up from the level below it, finest first.
ROLL_UP = (("district", "village"), ("regency", "district"), ("province", "regency"), ("national", "province"))

Row = list[int]  # votes, tps_reported, invalid, voters, revision
VectorKey = tuple[str, str, int]  # ballot, region, id() of the shared choice tuple


def _add(vectors: dict[VectorKey, list[int]], key: VectorKey, counts: tuple[int, ...] | list[int], sign: int = 1) -> None:
    found = vectors.get(key)
    if found is None:
        vectors[key] = list(counts) if sign == 1 else [-n for n in counts]
    elif sign == 1:
        vectors[key] = [a + b for a, b in zip(found, counts, strict=True)]
    else:
        vectors[key] = [a - b for a, b in zip(found, counts, strict=True)]


@dataclass
class TotalsDelta:
    """Summed signed deltas of one batch: rows (ballot, level, region, choice) -> [votes, tps_reported,
    invalid, voters, revision]."""

    # (ballot, village, id(choices)) -> vote deltas in the order of `choices_by_id`
    village_votes: dict[VectorKey, list[int]] = field(default_factory=dict)
    choices_by_id: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # (ballot, level, region, SUMMARY) -> row: every level's summary, and each TPS's marker
    summaries: dict[tuple[str, str, str, str], Row] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))

    def apply(self, old: Applied | None, new: Applied) -> None:
        ballot, village = new.ballot, region_of(new.tps, "village")
        self.choices_by_id[id(new.choices)] = new.choices
        key = (ballot, village, id(new.choices))
        _add(self.village_votes, key, new.counts)
        if old is not None:
            if old.choices is new.choices:
                _add(self.village_votes, key, old.counts, -1)
            else:  # the same choices in another order (read back from ClickHouse): align them first
                by_choice = dict(zip(old.choices, old.counts, strict=True))
                _add(self.village_votes, key, [by_choice.get(c, 0) for c in new.choices], -1)
        reported = 0 if old is not None else 1
        invalid = new.invalid - (old.invalid if old is not None else 0)
        voters = new.voters - (old.voters if old is not None else 0)
        for level in WRITTEN_LEVELS:
            summary = self.summaries[(ballot, level, region_of(new.tps, level), SUMMARY)]
            summary[1] += reported
            summary[2] += invalid
            summary[3] += voters
        # The TPS's own summary row, written in the same insert: sum(revision) there says which
        # revision these totals include, even if the crash came before tally_current was written.
        marker = self.summaries[(ballot, TPS_LEVEL, new.tps, SUMMARY)]
        marker[1] += reported
        marker[2] += invalid
        marker[3] += voters
        marker[4] += new.revision - (old.revision if old is not None else 0)

    def _vote_deltas(self) -> dict[tuple[str, str, str, str], int]:
        """(ballot, level, region, choice) -> summed vote delta, for the written levels."""
        by_level: dict[str, dict[VectorKey, list[int]]] = {"village": self.village_votes}
        for level, below in ROLL_UP:
            summed: dict[VectorKey, list[int]] = {}
            cut = PREFIX_LENGTH.get(level)
            for (ballot, region, choices), counts in by_level[below].items():
                _add(summed, (ballot, region[:cut] if cut else NATIONAL, choices), counts)
            by_level[level] = summed
        deltas: dict[tuple[str, str, str, str], int] = {}
        for level in WRITTEN_LEVELS:
            for (ballot, region, choices), counts in by_level[level].items():
                for choice, delta in zip(self.choices_by_id[choices], counts, strict=True):
                    if delta:  # added, not set: one choice may come from vectors of two choice orders
                        key = (ballot, level, region, choice)
                        deltas[key] = deltas.get(key, 0) + delta
        return deltas

    @property
    def rows(self) -> dict[tuple[str, str, str, str], Row]:
        """Every row: summaries (choice "") and vote deltas (never ""), keyed apart."""
        rows = {key: list(values) for key, values in self.summaries.items()}
        rows.update((key, [delta, 0, 0, 0, 0]) for key, delta in self._vote_deltas().items())
        return rows

    def as_rows(self, *extra: Any) -> list[tuple]:
        """The rows to write, each ending with `extra`. Built as tuples straight away: a legislative
        batch has ~30,000 of them."""
        rows = [(*key, *values, *extra) for key, values in self.summaries.items() if any(values)]
        rows.extend((*key, delta, 0, 0, 0, 0, *extra) for key, delta in self._vote_deltas().items() if delta)
        return rows
