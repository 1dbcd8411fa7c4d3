"""Stage 4, aggregate: how an applied revision moves the running totals of every region above it.

Totals move by (new - old), a retraction of the previous revision plus the new counts, so that a
correction replaces a count instead of adding to it; `tps_reported` moves only on a first count.
Deltas of a whole batch are summed here, so one row per (ballot, level, region, choice) is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from streams.regions import REGION_LEVELS, region_of
from streams.revisions import Applied

SUMMARY = ""  # the choice key of a region's summary row: tps_reported, invalid, voters, revision
TPS_LEVEL = "tps"


@dataclass
class TotalsDelta:
    """Summed signed deltas: (ballot, level, region, choice) -> [votes, tps_reported, invalid, voters, revision]."""

    rows: dict[tuple[str, str, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))

    def apply(self, old: Applied | None, new: Applied) -> None:
        changes: dict[str, int] = dict(new.votes)
        if old is not None:
            for choice, count in old.votes.items():
                changes[choice] = changes.get(choice, 0) - count
        reported = 0 if old is not None else 1
        invalid = new.invalid - (old.invalid if old is not None else 0)
        voters = new.voters - (old.voters if old is not None else 0)
        for level in REGION_LEVELS:
            region = region_of(new.tps, level)
            for choice, delta in changes.items():
                if delta:
                    self.rows[(new.ballot, level, region, choice)][0] += delta
            summary = self.rows[(new.ballot, level, region, SUMMARY)]
            summary[1] += reported
            summary[2] += invalid
            summary[3] += voters
        # The TPS's own summary row, written in the same insert: sum(revision) there says which
        # revision these totals include, even if the crash came before tally_current was written.
        marker = self.rows[(new.ballot, TPS_LEVEL, new.tps, SUMMARY)]
        marker[1] += reported
        marker[2] += invalid
        marker[3] += voters
        marker[4] += new.revision - (old.revision if old is not None else 0)

    def as_rows(self) -> list[tuple]:
        return [(*key, *values) for key, values in self.rows.items() if any(values)]
