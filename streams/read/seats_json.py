"""Seat results as readers get them (`tally seats --json`, /api/seats, a dapil's page, verify): the
core's typed results (`streams.core.seats`) in JSON, with each tie rule's decision in words.

Quotients and shares are exact fractions in the core; here they become numbers rounded for reading
(quotients to 3 places, shares to 6). The quotient table of each step stays in the core: a
national DPRD kab/kota answer would carry hundreds of thousands of its entries.
"""

from __future__ import annotations

from streams.core.seats import (
    BallotSeats,
    CandidateMargin,
    DapilSeats,
    PartyMargin,
    Step,
    Tie,
    TieNote,
)


def tie_words(note: TieNote) -> str:
    """What the rule decided, in one sentence."""
    if note.rule is Tie.EQUAL_QUOTIENT:
        return f"seat {note.seat}: equal quotients; {note.party} has more votes or the lower number"
    if note.rule is Tie.EXHAUSTED_LIST:
        passed = ", ".join(note.passed_over)
        return f"seat {note.seat}: {passed} listed too few candidates; it went on"
    first, second = note.candidates
    return f"{note.party}: {first} and {second} have {note.votes} votes each; list order decided"


def tie_json(note: TieNote) -> dict:
    """A tie rule's decision as data, for a reader that words it in its own language."""
    return {
        "rule": note.rule.value,
        "seat": note.seat,
        "party": note.party,
        "passed_over": list(note.passed_over),
        "candidates": list(note.candidates),
        "votes": note.votes,
    }


def step_json(step: Step) -> dict:
    return {
        "seat": step.seat,
        "party": step.party,
        "votes": step.votes,
        "divisor": step.divisor,
        "quotient": round(float(step.quotient), 3),
        "tie": step.tie,
        **({"skipped": list(step.skipped)} if step.skipped else {}),
    }


def margin_json(margin: PartyMargin | CandidateMargin | None) -> dict | None:
    if margin is None:
        return None
    if isinstance(margin, CandidateMargin):
        return {
            "candidate": margin.candidate,
            "votes": margin.votes,
            "runner_up": margin.runner_up,
            "runner_up_votes": margin.runner_up_votes,
            "votes_needed": margin.votes_needed,
        }
    answer: dict = {"party": margin.party, "quotient": round(float(margin.quotient), 3)}
    answer["runner_up"] = margin.runner_up
    if margin.runner_up is not None and margin.runner_up_quotient is not None:
        answer["runner_up_quotient"] = round(float(margin.runner_up_quotient), 3)
        answer["votes_needed"] = margin.votes_needed
    return answer


def dapil_json(seats: DapilSeats) -> dict:
    return {
        "dapil": seats.dapil,
        "seats": seats.seats,
        "parties": [{"party": p.party, "votes": p.votes, "seats": p.seats} for p in seats.parties],
        "elected": seats.elected,
        "margin": margin_json(seats.margin),
        "ties": [tie_words(note) for note in seats.ties],
        "tie_notes": [tie_json(note) for note in seats.ties],
        "steps": [step_json(s) for s in seats.steps],
    }


def ballot_json(seats: BallotSeats) -> dict:
    return {
        "ballot": seats.ballot,
        "threshold": float(seats.threshold) if seats.threshold is not None else None,
        "national": [
            {
                "party": p.party,
                "votes": p.votes,
                "share": round(float(p.share), 6),
                "passes": p.passes,
                "seats": p.seats,
            }
            for p in seats.national
        ],
        "bodies": [
            {
                "region": body.region,
                "seats": body.seats,
                "parties": [{"party": p, "seats": k} for p, k in body.parties],
            }
            for body in seats.bodies
        ],
        "dapils": [dapil_json(d) for d in seats.dapils],
    }
