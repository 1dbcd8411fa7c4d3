"""Stage 3 and 4: decisions per (TPS, ballot), and how totals move."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.aggregate import SENT_LEVEL, TotalsDelta, rolled_up
from streams.core.contract import decode_tally
from streams.core.pipeline import Processor
from streams.core.reasons import Decision
from streams.core.revisions import Applied, counted, decide, shared_choices
from tests.factories import small_registry, tally_dict


def t(**fields):
    return decode_tally(orjson.dumps(tally_dict(**fields))).tally


def test_first_count_is_applied():
    assert decide(None, t()) is Decision.APPLIED


def test_same_event_id_again_is_a_duplicate_even_after_a_correction():
    first = Applied.from_tally(t())
    second = Applied.from_tally(
        t(event_id="gw:2", revision=2, votes={"01": 1, "02": 2, "03": 3}), first
    )
    assert decide(first, t()) is Decision.DUPLICATE
    assert decide(second, t()) is Decision.DUPLICATE  # an old resend is a duplicate, not stale


def test_lower_revision_is_stale():
    current = Applied.from_tally(t(event_id="gw:2", revision=3))
    assert decide(current, t(event_id="gw:9", revision=2)) is Decision.STALE


def test_same_revision_other_counts_is_a_conflict_same_counts_a_duplicate():
    current = Applied.from_tally(t())
    assert (
        decide(current, t(event_id="gw:5", votes={"01": 121, "02": 79, "03": 30}))
        is Decision.CONFLICT
    )
    assert decide(current, t(event_id="gw:5", gateway="gw-other")) is Decision.DUPLICATE


def test_higher_revision_is_applied():
    assert decide(Applied.from_tally(t()), t(event_id="gw:2", revision=2)) is Decision.APPLIED


def test_correction_retracts_previous_revision():
    totals = TotalsDelta()
    first = Applied.from_tally(t())
    totals.apply(None, first, dpt=250)
    second = Applied.from_tally(
        t(event_id="gw:2", revision=2, votes={"01": 100, "02": 90, "03": 30}, invalid=3), first
    )
    totals.apply(first, second, dpt=250)
    rows = {
        (level, region, choice): values
        for (_, level, region, choice), values in totals.rows.items()
    }
    assert rows[("national", "ID", "01")][0] == 100
    assert rows[("regency", "3171", "02")][0] == 90
    # districts and villages are read from tally_current
    assert not any(level in ("district", "village") for _, level, _, _ in totals.rows)
    # the TPS (and its DPT) counted once
    assert rows[("province", "31", "")] == [
        0,
        1,
        3,
        second.voters,
        0,
        250,
    ]
    # One change row per revision: their sums say which revision the totals now include.
    changes = [values for (level, _, _), values in rows.items() if level == "tps"]
    assert [sum(column) for column in zip(*changes, strict=True)] == [
        0,
        1,
        3,
        second.voters,
        2,
        250,
    ]
    first_row, second_row = totals.changes
    assert (
        first_row.old_revision,
        first_row.revision,
        second_row.old_revision,
        second_row.revision,
    ) == (0, 1, 1, 2)
    # Only what moved: a choice whose count stayed is not in the change (every reader sums deltas).
    assert second_row.deltas == {
        c: n - first.votes[c] for c, n in second.votes.items() if n != first.votes[c]
    }
    assert second_row.deltas == {"01": -20, "02": 10}
    assert first_row.deltas == {c: n for c, n in first.votes.items() if n}
    assert rows[("tps", "3171010001001", "0000000002")] == [
        0,
        0,
        3 - first.invalid,
        second.voters - first.voters,
        1,
        0,
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"01": st.integers(0, 200), "02": st.integers(0, 200), "03": st.integers(0, 200)}
        ),
        min_size=1,
        max_size=6,
    )
)
def test_totals_always_equal_the_last_applied_revision(revisions):
    totals = TotalsDelta()
    current = None
    for number, votes in enumerate(revisions, 1):
        new = Applied.from_tally(t(event_id=f"gw:{number}", revision=number, votes=votes), current)
        totals.apply(current, new)
        current = new
    for level, region in (
        ("national", "ID"),
        ("province", "31"),
        ("regency", "3171"),
    ):
        for choice, count in revisions[-1].items():
            # no row: no change
            assert totals.rows.get(("PPWP", level, region, choice), [0])[0] == count
        assert totals.rows[("PPWP", level, region, "")][1] == 1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 300), min_size=3, max_size=3),
    st.lists(st.integers(0, 300), min_size=3, max_size=3),
)
def test_rows_to_write_are_the_nonzero_rows_with_their_partition(first_votes, second_votes):
    totals = TotalsDelta()
    choices = ("01", "02", "03")
    first = Applied.from_tally(t(votes=dict(zip(choices, first_votes, strict=True))))
    totals.apply(None, first)
    second = Applied.from_tally(
        t(event_id="gw:2", revision=2, votes=dict(zip(choices, second_votes, strict=True))), first
    )
    totals.apply(first, second)
    # the regencies' rows and the changes are sent; the levels above are the server's roll-up
    expected = {
        (*key, *values, 7)
        for key, values in totals.rows.items()
        if key[1] in (SENT_LEVEL, "tps") and (any(values) or key[1] == "tps")
    }
    written = totals.as_rows(7)
    # without the change's deltas (choices, votes), event and gateway
    plain = [(*row[:9], row[15], row[-1]) for row in written]
    assert len(plain) == len(set(plain)) and set(plain) == expected
    changes = [row for row in written if row[1] == "tps"]
    assert [(dict(zip(row[9], row[10], strict=True)), row[11]) for row in changes] == [
        (c.deltas, c.event_id) for c in totals.changes
    ]
    assert all(row[9:15] == ([], [], "", "", "", "") for row in written if row[1] != "tps")


# 2 provinces, 3 regencies
TPS_CODES = (
    "3171010001001",
    "3171020002003",
    "3172010001001",
    "3273010001002",
)
CHOICES = {"PPWP": ("01", "02", "03"), "DPR": ("P01", "P02", "P01-1", "P01-2", "P02-1")}


@st.composite
def applied_revisions(draw):
    """Revisions of a few (ballot, TPS) keys in any order, votes with zeros, keys in any order (as a
    gateway may send them, or as they come back from ClickHouse)."""
    steps = []
    for _ in range(draw(st.integers(1, 25))):
        ballot = draw(st.sampled_from(sorted(CHOICES)))
        order = draw(st.permutations(CHOICES[ballot]))
        votes = {choice: draw(st.integers(0, 3) | st.integers(0, 10**6)) for choice in order}
        steps.append((ballot, draw(st.sampled_from(TPS_CODES)), votes))
    return steps


@settings(max_examples=200, deadline=None)
@given(applied_revisions())
def test_vote_rows_are_the_per_choice_sums_of_what_each_revision_moved(steps):
    """The vectorised roll-up against the plainest reference: every choice of every revision added
    to its regency, province and nation one by one; rows that sum to 0 are not written."""
    from streams.core.regions import region_of

    totals, current, reference = TotalsDelta(), {}, {}
    for number, (ballot, tps, votes) in enumerate(steps, 1):
        old = current.get((ballot, tps))
        new = Applied.of(tps, ballot, number, f"gw:{number}", "d", votes, 0, 0)
        totals.apply(old, new)
        current[(ballot, tps)] = new
        for level in ("national", "province", "regency"):
            for choice, count in votes.items():
                key = (ballot, level, region_of(tps, level), choice)
                reference[key] = reference.get(key, 0) + count - (old.votes[choice] if old else 0)
    expected = {key: [delta, 0, 0, 0, 0, 0] for key, delta in reference.items() if delta}
    rows = {key: values for key, values in totals.rows.items() if key[3] and key[1] != "tps"}
    assert rows == expected
    written = [row for row in totals.as_rows() if row[3] and row[1] != "tps"]
    sent = {row[:4]: [*row[4:9], row[15]] for row in written}
    assert len(written) == len(sent) and {row[1] for row in written} <= {SENT_LEVEL}
    assert sent == {key: values for key, values in expected.items() if key[1] == SENT_LEVEL}
    assert rolled_up(sent) == expected  # what the insert makes of them


def test_vectors_of_different_lengths_are_refused_not_cut_short():
    """`map` and `compress` stop at the shorter input without a word: the roll-up checks the
    lengths."""
    import pytest

    from streams.core.aggregate import _add

    vectors = {("PPWP", "3171", 1): [1, 2, 3]}
    with pytest.raises(ValueError, match="differ in length"):
        _add(vectors, ("PPWP", "3171", 1), (1, 2))
    totals = TotalsDelta()
    totals.apply(None, Applied.from_tally(t()))
    (key,) = totals.regency_votes
    totals.regency_votes[key] = totals.regency_votes[key][:2]
    with pytest.raises(ValueError, match="counts for 3 choices"):
        totals.as_columns()


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries({c: st.integers(0, 3) for c in ("01", "02", "03")}),
    st.fixed_dictionaries({c: st.integers(0, 3) for c in ("01", "02", "03")}),
)
def test_a_tally_kept_without_its_zero_counts_reads_back_whole(first, second):
    # tally_current keeps the counts that are not 0; a worker that takes the partition reads the
    # tally back over its contest's choices, and a correction moves the totals as from the tally.
    contest = small_registry().contest_for("PPWP", "3171010001001").choices
    applied = Applied.from_tally(t(votes=first))
    kept = counted(applied.votes)
    assert 0 not in kept.values() and {c: kept.get(c, 0) for c in first} == first
    stored = Applied(
        applied.tps,
        applied.ballot,
        applied.revision,
        applied.event_id,
        applied.digest,
        tuple(kept),
        tuple(kept.values()),
        applied.invalid,
        applied.voters,
        applied.event_ids,
    )
    back = stored.over(contest)
    assert back.votes == applied.votes
    assert back.choices is shared_choices(contest)  # one tuple for every key of the contest
    new = Applied.from_tally(t(event_id="gw:2", revision=2, votes=second), back)
    direct, read_back = TotalsDelta(), TotalsDelta()
    direct.apply(applied, new)
    read_back.apply(back, new)
    assert read_back.rows == direct.rows


def test_a_tally_over_a_contest_that_lacks_one_of_its_choices_keeps_its_own():
    applied = Applied.from_tally(t(votes={"01": 1, "02": 0, "03": 4}))
    assert applied.over(("01", "02")).votes == applied.votes
    assert applied.over(None).choices is shared_choices(applied.choices)


def test_a_partition_taken_over_holds_its_tallies_over_their_contests_choices():
    registry = small_registry()
    processor = Processor(lambda: registry)
    kept = Applied.from_tally(t(votes={"01": 0, "02": 7, "03": 0}))
    stored = Applied(
        kept.tps, kept.ballot, kept.revision, kept.event_id, kept.digest, ("02",), (7,), 0, 7
    )
    processor.preload(0, [(("PPWP", kept.tps), stored)], {})
    held = processor.state.get(("PPWP", kept.tps))
    assert held.choices is shared_choices(registry.contest_for("PPWP", kept.tps).choices)
    assert held.votes == {"01": 0, "02": 7, "03": 0}
