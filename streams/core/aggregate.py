"""Stage 4, aggregate: how an applied revision moves the running totals of every region above it.

Totals move by (new - old), a retraction of the previous revision plus the new counts, so that a
correction replaces a count instead of adding to it; `tps_reported` moves only on a first count.
Deltas of a whole batch are summed here, so one row per (ballot, level, region, choice) is written.

Each applied revision is also one row of its own at the TPS level: the change (new - old per choice
in `delta_choices` and `delta_votes`, with the event and gateway), keyed by the revision it moved
to. Written in the same insert as the totals it moved, it is the history that results as of any
moment and the change feed are read from (docs/time-travel.md), and the sum of a TPS's
change rows is the marker that says which revision the totals include, so a replay after a crash
never moves them twice.

Counts are summed as vectors over a contest's choices (the shared choice tuple of `Applied`), per
regency for each event (the finest level written, see WRITTEN_LEVELS). A DPR tally has ~150
choices: adding each to five levels one by one per event would be most of a worker's time on
legislative ballots. (NumPy matrices per contest are slower here: the rows leave as Python values
either way.) The rows sent are the regencies' and the changes'; ClickHouse rolls each regency row up
to its province and the nation in the same insert (`clickhouse.sink`, ROLLED_UP): at a live
night's small batches that takes ~19 us an event off the write, the pipeline's bottleneck, for
~12 more of the server's (at a backlog's large batches ~2 off the worker, ~6 more on the server).
`rolled_up` is that roll-up in Python: the reference the insert is held to, and what
`TotalsDelta.rows` gives.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, itemgetter, neg, sub
from typing import Any

from streams.core.regions import PREFIX_LENGTH, region_of
from streams.core.revisions import Applied
from streams.core.rows import TotalsRow

# the choice key of a region's summary row: tps_reported, invalid, voters, revision, registered
SUMMARY = ""
TPS_LEVEL = "tps"
# Levels written to region_totals. Districts (~110 TPS) and villages (~10 TPS) are summed from
# tally_current when read: a batch's TPS are spread over the whole country, so at ~150 choices a
# legislative tally those rows were about one per event and choice: villages were 70% of what a
# batch wrote, then districts 73% of the rest.
WRITTEN_LEVELS = ("national", "province", "regency")
# The level whose rows a batch sends; ClickHouse adds the levels above it from them as it inserts.
SENT_LEVEL = "regency"
ROLLED_UP = ("province", "national")
REGENCY = PREFIX_LENGTH[SENT_LEVEL]

# votes, tps_reported, invalid, voters, revision, registered (the DPT of the TPS that reported)
Row = list[int]
# of a (choice, count) pair: filter() keeps the pairs whose count is not 0
_count_of = itemgetter(1)
# delta_choices, delta_votes, event_id, gateway, event, source of a row that is not a change
NO_CHANGE: tuple = (
    [],
    [],
    "",
    "",
    "",
    "",
)


def revision_key(revision: int) -> str:
    """The `choice` of a change row: the revision it moved to, zero-padded so a TPS's changes sort
    in order."""
    return f"{revision:010d}"


@dataclass(frozen=True, slots=True)
class Change:
    """One applied revision of one (ballot, TPS): what it moved, as written at the TPS level."""

    ballot: str
    tps: str
    revision: int  # the revision applied
    old_revision: int  # the revision it replaced, 0 for a first count
    deltas: dict[str, int]  # per choice, new - old (zeros may be there)
    reported: int  # 1 for a first count, else 0
    invalid: int
    voters: int
    event_id: str
    gateway: str
    event: str = (
        ""  # the event exactly as its device signed it (canonical JSON with sig): the log's leaf
    )
    source: str = ""  # "partition:offset" of that event in the submissions topic
    registered: int = (
        0  # the TPS's DPT on its first count, else 0: turnout's basis over the TPS that reported
    )

    def row(self) -> TotalsRow:
        return TotalsRow(
            self.ballot,
            TPS_LEVEL,
            self.tps,
            revision_key(self.revision),
            0,
            self.reported,
            self.invalid,
            self.voters,
            self.revision - self.old_revision,
            list(self.deltas),
            list(self.deltas.values()),
            self.event_id,
            self.gateway,
            self.event,
            self.source,
            self.registered,
        )


VectorKey = tuple[str, str, int]  # ballot, region, id() of the shared choice tuple


def _zero_row() -> Row:
    return [0, 0, 0, 0, 0, 0]


def _add(
    vectors: dict[VectorKey, list[int]],
    key: VectorKey,
    counts: tuple[int, ...] | list[int],
    sign: int = 1,
) -> None:
    """Add (or subtract) a vector in C (`map` with operator functions). `map` would stop at the
    shorter vector without a word, so the lengths are checked (the key holds the choice tuple's id:
    they match)."""
    found = vectors.get(key)
    if found is not None and len(found) != len(counts):
        raise ValueError(f"vectors of {key} differ in length: {len(found)} and {len(counts)}")
    if found is None:
        vectors[key] = list(counts) if sign == 1 else list(map(neg, counts))
    else:
        vectors[key] = list(map(add if sign == 1 else sub, found, counts))


@dataclass
class TotalsDelta:
    """Summed signed deltas of one batch: rows (ballot, level, region, choice) -> [votes,
    tps_reported, invalid, voters, revision, registered]."""

    # (ballot, regency, id(choices)) -> vote deltas in the order of `choices_by_id`
    regency_votes: dict[VectorKey, list[int]] = field(default_factory=dict)
    choices_by_id: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # (ballot, level, region, SUMMARY) -> row: every written level's summary
    summaries: dict[tuple[str, str, str, str], Row] = field(
        default_factory=lambda: defaultdict(_zero_row)
    )
    # each applied revision, in the order applied: the TPS level's rows
    changes: list[Change] = field(default_factory=list)

    def apply(
        self,
        old: Applied | None,
        new: Applied,
        gateway: str = "",
        event: str = "",
        source: str = "",
        dpt: int = 0,
    ) -> None:
        """Add one applied revision; `dpt` is the TPS's registered voters (counted once, on its
        first count)."""
        ballot = new.ballot
        self.choices_by_id[id(new.choices)] = new.choices
        key = (ballot, new.tps[:REGENCY], id(new.choices))
        _add(self.regency_votes, key, new.counts)
        if old is not None:
            if old.choices is new.choices:
                _add(self.regency_votes, key, old.counts, -1)
            else:  # the same choices in another order (read back from ClickHouse): align them first
                by_choice = dict(zip(old.choices, old.counts, strict=True))
                _add(self.regency_votes, key, [by_choice.get(c, 0) for c in new.choices], -1)
        reported = 0 if old is not None else 1
        registered = dpt if old is None else 0
        invalid = new.invalid - (old.invalid if old is not None else 0)
        voters = new.voters - (old.voters if old is not None else 0)
        summary = self.summaries[(ballot, SENT_LEVEL, new.tps[:REGENCY], SUMMARY)]
        summary[1] += reported
        summary[2] += invalid
        summary[3] += voters
        summary[5] += registered
        # The TPS's change row, written in the same insert: the sum of revision over a TPS's rows
        # says which revision these totals include, even if the crash came before tally_current was
        # written. Built by zip, map and filter, not choice by choice in Python: a legislative tally
        # has ~150 choices, and a per-choice loop here cost 12% of a worker's time. Zero deltas are
        # left out (every reader sums them): most candidates' columns are 0 at a TPS (59% of the
        # entries on the simulated five-ballot night), and ClickHouse parsed each of them.
        if old is None:
            deltas = dict(filter(_count_of, zip(new.choices, new.counts, strict=True)))
        elif old.choices is new.choices:
            deltas = dict(
                filter(_count_of, zip(new.choices, map(sub, new.counts, old.counts), strict=True))
            )
        else:  # the same choices in another order (read back from ClickHouse)
            before, after = old.votes, new.votes
            deltas = {c: n - before.get(c, 0) for c, n in after.items() if n != before.get(c, 0)}
            deltas.update((c, -n) for c, n in before.items() if c not in after and n)
        self.changes.append(
            Change(
                ballot,
                new.tps,
                new.revision,
                old.revision if old is not None else 0,
                deltas,
                reported,
                invalid,
                voters,
                new.event_id,
                gateway,
                event,
                source,
                registered,
            )
        )

    def _vote_columns(self) -> list[list]:
        """The regencies' vote deltas that are not 0, as columns: ballot, level, region, choice,
        votes. Each vector is filtered in C (`compress`, `repeat`), one Python step a vector (~0.5
        an event), not one a choice (~5 an event on five ballots: this loop was a third of the
        aggregation's time in a worker's profile). A regency whose vectors have two choice orders
        (a tally read back from ClickHouse) is summed by choice instead."""
        columns: list[list] = [[], [], [], [], []]
        ballots, levels, regions, names, votes = columns
        vectors = self.regency_votes
        orders = Counter((ballot, region) for ballot, region, _ in vectors)
        by_choice: dict[tuple[str, str, str], int] = {}  # regencies with vectors of two orders
        for (ballot, region, choices), counts in vectors.items():
            if orders[(ballot, region)] > 1:
                for choice, delta in zip(self.choices_by_id[choices], counts, strict=True):
                    by_choice[(ballot, region, choice)] = (
                        by_choice.get((ballot, region, choice), 0) + delta
                    )
                continue
            order = self.choices_by_id[choices]
            if len(order) != len(counts):  # `compress` would pair them silently
                raise ValueError(
                    f"{len(counts)} counts for {len(order)} choices in {ballot} {region}"
                )
            moved = list(compress(counts, counts))
            ballots.extend(repeat(ballot, len(moved)))
            levels.extend(repeat(SENT_LEVEL, len(moved)))
            regions.extend(repeat(region, len(moved)))
            names.extend(compress(order, counts))
            votes.extend(moved)
        for (ballot, region, choice), delta in by_choice.items():
            if delta:
                for column, value in zip(
                    columns, (ballot, SENT_LEVEL, region, choice, delta), strict=True
                ):
                    column.append(value)
        return columns

    @property
    def rows(self) -> dict[tuple[str, str, str, str], Row]:
        """Every row as ClickHouse holds it once the batch is in: summaries (choice ""), vote deltas
        (never "") at every written level, and changes (level tps), keyed apart."""
        rows = {key: list(values) for key, values in self.summaries.items()}
        *keys, votes = self._vote_columns()
        rows.update(
            (key, [delta, 0, 0, 0, 0, 0])
            for key, delta in zip(zip(*keys, strict=True), votes, strict=True)
        )
        rows = rolled_up(rows)
        rows.update(
            (change.row()[:4], [*change.row()[4:9], change.registered]) for change in self.changes
        )
        return rows

    def as_columns(self, *extra: Any) -> list[list]:
        """The rows to write as columns (the order of `rows.TotalsRow`, then `extra`, the same in
        every row): summaries, vote deltas, changes. Made by transposing keys and filling constants
        in C, not as a tuple a row: a legislative batch has ~30,000 rows, ~27,000 of them vote
        deltas."""
        summaries = [(*key, *values) for key, values in self.summaries.items() if any(values)]
        votes = self._vote_columns()
        moved = len(votes[4])
        changes = [change.row() for change in self.changes]
        width = len(NO_CHANGE) + 10
        heads = columns_of(summaries, 10)  # keys, then votes .. revision, registered
        # keys, votes .. revision, NO_CHANGE's columns, registered
        changed = columns_of(changes, width)
        vote_rows = [*votes, *([0] * moved for _ in range(4))]
        n = len(summaries) + moved + len(changes)
        columns = [heads[i] + vote_rows[i] + changed[i] for i in range(9)]
        columns += [
            [constant] * (n - len(changes)) + changed[i] for i, constant in enumerate(NO_CHANGE, 9)
        ]
        columns.append(heads[9] + [0] * moved + changed[width - 1])
        return columns + [[value] * n for value in extra]

    def as_rows(self, *extra: Any) -> list[tuple]:
        """The same rows, a tuple each (for tests and readers of one batch)."""
        return list(zip(*self.as_columns(*extra), strict=True))


def rolled_up(rows: dict[tuple[str, str, str, str], Row]) -> dict[tuple[str, str, str, str], Row]:
    """`rows` with each regency row also added to its province's and the nation's (what the insert
    of region_totals does on the server); rows that sum to 0 there are left out, as SummingMergeTree
    leaves them."""
    out = {key: list(values) for key, values in rows.items()}
    for (ballot, level, region, choice), values in rows.items():
        if level != SENT_LEVEL:
            continue
        for up in ROLLED_UP:
            found = out.setdefault((ballot, up, region_of(region, up), choice), _zero_row())
            found[:] = map(add, found, values)
    return {key: values for key, values in out.items() if any(values)}


def columns_of(rows: Collection[tuple], width: int, *extra: Any) -> list[list]:
    """Rows (tuples of `width` values) as column lists, also when there are none; each `extra` a
    column of one value. The sink writes every table's rows so."""
    columns = (
        [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    )
    return columns + [[value] * len(rows) for value in extra]
