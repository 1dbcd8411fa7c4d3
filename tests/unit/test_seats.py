"""Seats: pure Sainte-Lague, the DPR threshold, open lists, DPD, ties and margins, against a plain
reference."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from streams.core.seats import (
    CandidateMargin,
    Dapil,
    PartySeats,
    Tie,
    TieNote,
    ballot_seats,
    dapil_seats,
    dpd_seats,
    party_totals,
    passing,
    sainte_lague,
)
from streams.read.seats_json import ballot_json, margin_json, tie_json, tie_words

# percent of national valid DPR votes (reference file), parties by number (P24: Ummat)
SHARES_2024 = {
    "P01": 10.62, "P02": 13.22, "P03": 16.72, "P04": 15.29, "P05": 9.66, "P06": 0.64, "P07": 0.84,
    "P08": 8.42, "P09": 0.22, "P10": 0.72, "P11": 0.27, "P12": 7.24, "P13": 0.32, "P14": 7.43,
    "P15": 2.81, "P16": 1.29, "P17": 3.87, "P24": 0.42,
}  # fmt: skip


def reference_seats(seats: int, votes: dict[str, int]) -> Counter:
    """The textbook highest-averages table: every quotient votes / (1, 3, 5, ..), the `seats`
    largest win (equal quotients: more votes, then the lower code)."""
    table = [
        (Fraction(n, 2 * k + 1), n, p) for p, n in votes.items() if n > 0 for k in range(seats)
    ]
    table.sort(key=lambda q: (-q[0], -q[1], q[2]))
    return Counter(p for _, _, p in table[:seats])


votes_strategy = st.dictionaries(
    st.sampled_from([f"P{i:02d}" for i in range(1, 19)]),
    st.integers(min_value=0, max_value=100_000),
    min_size=1,
)


@given(st.integers(min_value=1, max_value=12), votes_strategy)
def test_sainte_lague_matches_the_highest_averages_table(seats, votes):
    steps = sainte_lague(seats, votes)
    assert Counter(s.party for s in steps) == reference_seats(seats, votes)
    assert len(steps) == (seats if any(votes.values()) else 0)
    for party in {s.party for s in steps}:  # each party's divisors run 1, 3, 5, ..
        assert [s.divisor for s in steps if s.party == party] == list(
            range(1, 2 * len([s for s in steps if s.party == party]), 2)
        )
    # each seat to the best left
    assert all(a.quotient >= b.quotient for a, b in zip(steps, steps[1:], strict=False))


@given(st.integers(min_value=1, max_value=10), votes_strategy)
def test_the_runner_up_takes_the_last_seat_with_exactly_the_votes_needed(seats, votes):
    full_lists = [c for p in votes for c in (p, *(f"{p}.{k:02d}" for k in range(1, seats + 1)))]
    result = dapil_seats("D", seats, full_lists, votes, {})
    margin = result.margin
    if margin is None or margin.runner_up is None:
        return
    runner, needed = margin.runner_up, margin.votes_needed
    before = Counter(s.party for s in sainte_lague(seats, votes))[runner]
    more = dict(votes, **{runner: votes[runner] + needed})
    less = dict(votes, **{runner: votes[runner] + needed - 1})
    assert Counter(s.party for s in sainte_lague(seats, more))[runner] == before + 1
    if needed > 0:
        exact = sainte_lague(seats, less)
        assert Counter(s.party for s in exact)[runner] == before or exact[-1].tie


def test_the_2024_threshold_keeps_ppp_out_and_eight_parties_in():
    # ~151.8M valid votes
    national = {p: round(share * 1_518_000) for p, share in SHARES_2024.items()}
    passes = passing(national, Fraction(4, 100))
    assert sorted(p for p, ok in passes.items() if ok) == [
        "P01",
        "P02",
        "P03",
        "P04",
        "P05",
        "P08",
        "P12",
        "P14",
    ]
    assert not passes["P17"]  # PPP, 3.87%
    assert all(passing(national, None).values())  # DPRD: every party


def test_party_votes_are_the_party_column_plus_its_candidates():
    assert party_totals({"P01": 10, "P01.01": 5, "P01.02": 7, "P02": 1, "P02.01": 0}) == {
        "P01": 22,
        "P02": 1,
    }


def test_a_party_below_the_threshold_wins_no_seat_in_any_dapil():
    votes = {
        "P01": 300,
        "P01.01": 100,
        "P01.02": 0,
        "P02": 50,
        "P02.01": 10,
        "P17": 10_000,
        "P17.01": 1,
    }
    result = dapil_seats("DPR-X", 3, list(votes), votes, {"P01": True, "P02": True, "P17": False})
    assert {row.party: row.seats for row in result.parties} == {"P01": 2, "P02": 1, "P17": 0}
    assert result.parties[-1] == PartySeats("P17", 10_001, 0)


def test_a_partys_seats_go_to_its_candidates_with_the_most_votes():
    choices = ["P01", "P01.01", "P01.02", "P01.03", "P02", "P02.01"]
    votes = {"P01": 100, "P01.01": 10, "P01.02": 300, "P01.03": 200, "P02": 1, "P02.01": 1}
    result = dapil_seats("D", 2, choices, votes, {})
    assert result.elected == ["P01.02", "P01.03"]
    assert result.ties == []


def test_equal_quotients_go_to_the_party_with_more_votes_then_the_lower_number_and_are_marked():
    steps = sainte_lague(2, {"P02": 300, "P01": 300})
    assert [s.party for s in steps] == ["P01", "P02"] and steps[0].tie
    # 300/3 = 100/1 for the second seat: P02 has more votes
    steps = sainte_lague(2, {"P01": 100, "P02": 300})
    assert [s.party for s in steps] == ["P02", "P02"] and steps[1].tie
    result = dapil_seats(
        "D", 1, ["P01", "P01.01", "P02", "P02.01"], {"P01.01": 50, "P02.01": 50}, {}
    )
    assert result.elected == ["P01.01"]
    assert [note.rule for note in result.ties] == [Tie.EQUAL_QUOTIENT]


def test_equal_candidate_votes_go_by_list_order_and_are_marked():
    choices = ["P01", "P01.01", "P01.02", "P01.03"]
    result = dapil_seats("D", 1, choices, {"P01.01": 5, "P01.02": 9, "P01.03": 9}, {})
    assert result.elected == ["P01.02"]
    [note] = result.ties
    assert note == TieNote(
        Tie.EQUAL_CANDIDATE_VOTES, party="P01", candidates=("P01.02", "P01.03"), votes=9
    )
    assert tie_words(note) == "P01: P01.02 and P01.03 have 9 votes each; list order decided"
    # As data for a reader that words it in its own language (the page: Indonesian or English).
    assert tie_json(note) == {
        "rule": "equal_candidate_votes", "seat": None, "party": "P01", "passed_over": [],
        "candidates": ["P01.02", "P01.03"], "votes": 9,
    }  # fmt: skip


def test_a_seat_beyond_a_partys_list_goes_to_the_next_quotient_and_is_marked():
    choices = ["P01", "P01.01", "P02", "P02.01", "P02.02", "P02.03"]
    result = dapil_seats("D", 3, choices, {"P01": 1000, "P02": 10}, {})
    assert [s.party for s in result.steps] == ["P01", "P02", "P02"]
    assert result.steps[1].skipped == ("P01",)
    assert {r.party: r.seats for r in result.parties} == {"P01": 1, "P02": 2}
    assert TieNote(Tie.EXHAUSTED_LIST, 2, "P02", passed_over=("P01",)) in result.ties
    assert any("too few candidates" in tie_words(t) for t in result.ties)
    # Each step keeps the quotient table it was chosen from, best first.
    assert result.steps[1].quotients == (("P01", Fraction(1000, 3)), ("P02", Fraction(10)))


def test_dpd_elects_the_four_with_the_most_votes():
    votes = {"D01": 10, "D02": 50, "D03": 40, "D04": 40, "D05": 30, "D06": 30, "D07": 5}
    result = dpd_seats("DPD-35", 4, list(votes), votes)
    assert result.elected == ["D02", "D03", "D04", "D05"]
    assert [t.rule for t in result.ties] == [Tie.EQUAL_CANDIDATE_VOTES]
    assert result.margin == CandidateMargin("D05", 30, "D06", 30, votes_needed=1)
    assert margin_json(result.margin) == {
        "candidate": "D05", "votes": 30, "runner_up": "D06", "runner_up_votes": 30,
        "votes_needed": 1,
    }  # fmt: skip


def test_ballot_seats_sum_bodies_and_apply_the_threshold_to_dpr_only():
    a = Dapil(
        "DPRDP-35-01",
        3,
        ("P01", "P01.01", "P01.02", "P01.03", "P02", "P02.01"),
        {"P01": 90, "P02": 3},
        body="35",
    )
    b = Dapil(
        "DPRDP-35-02",
        3,
        ("P01", "P01.01", "P02", "P02.01", "P02.02"),
        {"P01": 10, "P02": 20},
        body="35",
    )
    dprd = ballot_json(ballot_seats("DPRD_PROV", [a, b], Fraction(4, 100)))
    assert dprd["threshold"] is None and all(p["passes"] for p in dprd["national"])
    assert dprd["bodies"] == [
        {
            "region": "35",
            "seats": 6,
            "parties": [{"party": "P01", "seats": 4}, {"party": "P02", "seats": 2}],
        }
    ]
    typed = ballot_seats("DPR", [a, b], Fraction(4, 100))
    assert typed.threshold == Fraction(4, 100) and typed.bodies == ()
    assert [(p.party, p.share) for p in typed.national] == [
        ("P01", Fraction(100, 123)),
        ("P02", Fraction(23, 123)),
    ]
    dpr = ballot_json(typed)
    assert dpr["threshold"] == 0.04
    assert {p["party"]: (p["passes"], p["seats"]) for p in dpr["national"]} == {
        "P01": (True, 4),
        "P02": (True, 2),
    }


def test_the_threshold_setting_is_an_exact_fraction_or_a_clear_error():
    import pytest

    from streams.settings import Settings, threshold_of

    assert (
        threshold_of("0.04")
        == threshold_of("4%")
        == Fraction(1, 25)
        == Settings.from_env({}).dpr_threshold
    )
    assert Settings.from_env({"TALLY_DPR_THRESHOLD": "0.05"}).dpr_threshold == Fraction(1, 20)
    for bad in ("four", "1.5", "-1%"):
        with pytest.raises(ValueError, match="TALLY_DPR_THRESHOLD must be"):
            threshold_of(bad)


@given(st.integers(min_value=1, max_value=30), votes_strategy)
def test_adding_a_seat_never_takes_one_from_a_party(seats, votes):
    """House monotonicity (Balinski and Young): a divisor method gives every party at least as many
    seats in a larger house as in a smaller one, Sainte-Lague included."""
    smaller = Counter(s.party for s in sainte_lague(seats, votes))
    larger = Counter(s.party for s in sainte_lague(seats + 1, votes))
    assert all(larger[p] >= n for p, n in smaller.items())
    assert sum(larger.values()) <= sum(smaller.values()) + 1


@given(st.integers(min_value=1, max_value=30), votes_strategy, st.randoms(use_true_random=False))
def test_relabelling_the_parties_changes_nothing_but_marked_ties(seats, votes, rng):
    """Anonymity: the seats follow the votes, not the names. Parties renamed at random win the same
    seats under their new names, except where a step was a marked tie (rule 1 then looks at the
    party number)."""
    names = list(votes)
    shuffled = names[:]
    rng.shuffle(shuffled)
    rename = dict(zip(names, shuffled, strict=True))
    steps = sainte_lague(seats, votes)
    renamed = sainte_lague(seats, {rename[p]: n for p, n in votes.items()})
    if any(s.tie for s in steps) or any(s.tie for s in renamed):
        return
    assert Counter(rename[s.party] for s in steps) == Counter(s.party for s in renamed)
