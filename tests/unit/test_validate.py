"""Stage 2: one test per rule, named after it, asserting the exact codes and field paths."""

from __future__ import annotations

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.core.contract import Tally, decode_tally
from streams.core.reasons import Flag
from streams.core.validate import validate_tally
from tests.factories import small_registry, tally_dict, valid_tallies


def as_tally(event: dict) -> Tally:
    decoded = decode_tally(orjson.dumps(event))
    assert decoded.tally is not None, decoded.findings
    return decoded.tally


def codes(event: dict, registry=None) -> list[tuple[str, str]]:
    return [(f.reason.value, f.path) for f in validate_tally(as_tally(event), registry).findings]


def test_valid_example_is_accepted_with_the_registry():
    verdict = validate_tally(as_tally(tally_dict()), small_registry())
    assert verdict.accepted and verdict.reasons == [] and verdict.flags == ()


def test_unknown_tps():
    assert codes(tally_dict(tps="3171010001999"), small_registry()) == [("UNKNOWN_TPS", "$.tps")]


def test_ballot_not_held_dprd_kab_in_dki_jakarta():
    assert codes(tally_dict(ballot="DPRD_KAB"), small_registry()) == [
        ("BALLOT_NOT_HELD", "$.ballot")
    ]


def test_unknown_choice_and_missing_choice_name_each_choice():
    event = tally_dict(votes={"01": 120, "02": 80, "04": 30})
    assert codes(event, small_registry()) == [
        ("UNKNOWN_CHOICE", "$.votes.04"),
        ("MISSING_CHOICE", "$.votes.03"),
    ]


def test_legislative_choices_follow_the_contest_of_the_tps():
    event = tally_dict(ballot="DPR", votes={"P01": 50, "P01.01": 100, "P02": 80})
    assert codes(event, small_registry()) == []


def test_registered_mismatch():
    assert codes(tally_dict(dpt=280), small_registry()) == [
        ("REGISTERED_MISMATCH", "$.voters.registered.dpt")
    ]


def test_voted_exceeds_registered_names_each_category():
    event = tally_dict(dptb=1, dpk=0)  # voted dptb 3 > 1, voted dpk 2 > 0
    assert codes(event) == [
        ("VOTED_EXCEEDS_REGISTERED", "$.voters.voted.dptb"),
        ("VOTED_EXCEEDS_REGISTERED", "$.voters.voted.dpk"),
    ]


def test_ballots_mismatch():
    event = tally_dict()
    event["ballots"]["received"] += 1
    assert codes(event) == [("BALLOTS_MISMATCH", "$.ballots.received")]


def test_votes_mismatch_ocr_inflated_digit():
    event = tally_dict()
    event["votes"]["01"] = 620  # 120 read as 620
    found = codes(event)
    assert ("VOTES_MISMATCH", "$.votes") in found


def test_turnout_mismatch():
    event = tally_dict()
    event["voters"]["voted"]["dpt"] -= 1
    assert codes(event) == [("TURNOUT_MISMATCH", "$.voters.voted")]


def test_a_rejected_tally_lists_every_code_that_applies():
    event = tally_dict(tps="3171010001999")
    event["ballots"]["used"] += 10
    verdict = validate_tally(as_tally(event), small_registry())
    assert verdict.reasons == [
        "UNKNOWN_TPS",
        "BALLOTS_MISMATCH",
        "VOTES_MISMATCH",
        "TURNOUT_MISMATCH",
    ]


def test_flag_high_turnout():
    # all 276 registered voted
    event = tally_dict(votes={"01": 200, "02": 50, "03": 24}, invalid=2, dpt=271, dptb=3, dpk=2)
    assert Flag.HIGH_TURNOUT in validate_tally(as_tally(event)).flags


def test_flag_landslide():
    assert (
        Flag.LANDSLIDE
        in validate_tally(as_tally(tally_dict(votes={"01": 190, "02": 5, "03": 4}))).flags
    )


def test_flag_high_invalid():
    assert Flag.HIGH_INVALID in validate_tally(as_tally(tally_dict(invalid=30))).flags


def test_flag_over_dpt_kawalpemilu_rule():
    event = tally_dict(
        votes={"01": 120, "02": 80, "03": 30},
        invalid=5,
        dpt=200,
        dptb=40,
        dpk=10,
        voted_dptb=30,
        voted_dpk=5,
    )
    verdict = validate_tally(as_tally(event))
    assert verdict.accepted and Flag.OVER_DPT in verdict.flags  # 235 used > 200 * 1.02


@settings(max_examples=300, deadline=None)
@given(valid_tallies())
def test_every_generated_valid_tally_is_accepted(event):
    assert validate_tally(
        as_tally(event), small_registry(dpt=event["voters"]["registered"]["dpt"])
    ).accepted


def break_equation(event: dict, code: str, n: int) -> None:
    """Change the counts so that exactly one C1 equation fails."""
    voters = event["voters"]
    if code == "BALLOTS_MISMATCH":
        event["ballots"]["received"] += n
    elif code == "VOTES_MISMATCH":
        event["invalid"] += n
    elif code == "TURNOUT_MISMATCH":
        voters["voted"]["dptb"] += n
        voters["registered"]["dptb"] += n
    else:  # VOTED_EXCEEDS_REGISTERED: fewer registered than voted in one category
        category = next(x for x in ("dpt", "dptb", "dpk") if voters["voted"][x] > 0)
        voters["registered"][category] = voters["voted"][category] - min(
            n, voters["voted"][category]
        )


@settings(max_examples=300, deadline=None)
@given(
    valid_tallies(),
    st.sampled_from(
        ["BALLOTS_MISMATCH", "VOTES_MISMATCH", "TURNOUT_MISMATCH", "VOTED_EXCEEDS_REGISTERED"]
    ),
    st.integers(1, 50),
)
def test_breaking_one_equation_is_rejected_with_that_equations_code(event, code, amount):
    assume(code != "VOTED_EXCEEDS_REGISTERED" or event["ballots"]["used"] > 0)
    break_equation(event, code, amount)
    assert validate_tally(as_tally(event)).reasons == [code]


def test_over_allocation_a_tps_cannot_receive_more_ballots_than_its_dpt_plus_two_percent():
    """UU 7/2017 Pasal 350(3): a TPS gets its DPT plus 2% of it in ballots (281 -> 287)."""
    assert codes(tally_dict(), small_registry()) == []  # 287 received: the allocation exactly
    event = tally_dict(spare=52)  # 288 received
    assert codes(event, small_registry()) == [("OVER_ALLOCATION", "$.ballots.received")]
    [finding] = validate_tally(as_tally(event), small_registry()).findings
    assert finding.detail == "received 288 > 287 (DPT 281 + 2%)"


def test_over_allocation_a_stolen_key_cannot_add_900000_votes():
    """A C1-consistent 'correction' claiming 900,000 DPK voters, as a stolen device key could sign
    it."""
    event = tally_dict(
        votes={"01": 120, "02": 900_080, "03": 30},
        dpk=900_000,
        voted_dpk=900_000,
        spare=0,
        returned=0,
    )
    assert codes(event) == []  # every C1 equation holds: only the registry can say it is impossible
    assert ("OVER_ALLOCATION", "$.ballots.received") in codes(event, small_registry())


def test_over_allocation_the_registry_may_record_a_larger_allocation():
    registry = small_registry()
    registry.allocations["3171010001001"] = 300
    assert codes(tally_dict(spare=60), registry) == []  # 296 received of 300 allocated
    assert codes(tally_dict(spare=65), registry) == [("OVER_ALLOCATION", "$.ballots.received")]
