"""Seats, the last stage: who a legislative count elects, computed from totals (UU 7/2017, as in
2024).

- Party votes in a dapil = the party's own column + each of its candidates (C1 eq. 6).
- DPR: only parties with at least the threshold of national valid DPR votes take part (Pasal 414(1);
  4% in 2024, a setting since the Constitutional Court ordered it revised). DPRD: every party.
- A dapil's seats go by pure Sainte-Lague: quotients votes / 1, 3, 5, 7, ..; each seat to the
  highest quotient left (Pasal 415(2)). A party's seats go to its candidates with the most votes
  (Pasal 422). DPD: the 4 candidates with the most votes in the province.

Quotients are compared as exact fractions, never floats. Every seat is a recorded step, so the
result explains itself ("why this party took the last seat"), and ties are explicit outcomes.

The rule for ties (the law's own tie-breaks, the spread of votes over the dapil and women's
representation, need data a count does not carry), applied everywhere and marked `tie` in the
output:
  1. equal quotients for a seat: the party with more votes in the dapil, then the lower party
     number;
  2. equal candidate votes: the lower candidate number (list order);
  3. a party that won more seats than it listed candidates: the seat goes to the next highest
     quotient of another party (its list is exhausted; marked in the step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

LEGISLATIVE = ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB")
PARTY_BALLOTS = ("DPR", "DPRD_PROV", "DPRD_KAB")  # DPD elects individuals
DPR_THRESHOLD = Fraction(4, 100)  # 2024's; `TALLY_DPR_THRESHOLD` changes it
BODY_LEVEL = {
    "DPRD_PROV": 2,
    "DPRD_KAB": 4,
}  # the body a DPRD dapil elects: its province, its regency


def body_of(ballot: str, regions: Iterable[str]) -> str:
    """The region whose body a dapil elects: the nation (DPR, DPD), a province (DPRD provinsi) or a
    regency (DPRD kab/kota), from the code of the dapil's first region."""
    width = BODY_LEVEL.get(ballot)
    return next(iter(regions))[:width] if width else "ID"


def party_of(choice: str) -> str | None:
    """The party a choice counts for: 'P01.03' and 'P01' -> 'P01'; pairs and DPD candidates ->
    None."""
    if choice.startswith("P") and len(choice) >= 3:
        return choice[:3]
    return None


def party_totals(votes: Mapping[str, int]) -> dict[str, int]:
    """Party -> its own column plus all its candidates' votes (C1 eq. 6), by party code."""
    totals: dict[str, int] = {}
    for choice, n in votes.items():
        if (
            choice[:1] == "P" and len(choice) >= 3
        ):  # party_of, inline: verify calls this for every TPS
            party = choice[:3]
            totals[party] = totals.get(party, 0) + n
    return dict(sorted(totals.items()))


def reported_votes(ballot: str, level: str, votes: Mapping[str, int]) -> dict[str, int]:
    """What a region's results report as votes. A candidate's number names a different person in
    each dapil, so candidates are only summed within one: party ballots report party totals at every
    level above a TPS (a TPS lies in one dapil and keeps its own columns); DPD reports its
    candidates up to the province (its dapil), none nationally; PPWP's pairs are the same
    everywhere."""
    if ballot in PARTY_BALLOTS and level != "tps":
        return party_totals(votes)
    if ballot == "DPD" and level == "national":
        return {}
    return dict(votes)


def candidates_of(choices: Iterable[str]) -> dict[str, list[str]]:
    """Party -> its listed candidates in list order (a contest's choices)."""
    listed: dict[str, list[str]] = {}
    for choice in choices:
        party = party_of(choice)
        if party is not None:
            listed.setdefault(party, [])
            if choice != party:
                listed[party].append(choice)
    return listed


def passing(national: Mapping[str, int], threshold: Fraction | None) -> dict[str, bool]:
    """Party -> whether it takes part in seat allocation: its share of all valid votes is at least
    the threshold (None: every party, as for DPRD)."""
    valid = sum(national.values())
    return {
        p: threshold is None
        or (valid > 0 and n * threshold.denominator >= threshold.numerator * valid)
        for p, n in national.items()
    }


@dataclass(frozen=True)
class Step:
    """One seat, in the order the seats were won."""

    seat: int  # 1-based
    party: str
    votes: int
    divisor: int  # 1, 3, 5, ..
    quotient: Fraction
    tie: bool = False  # another party had the same quotient: rule 1 decided
    skipped: tuple[
        str, ...
    ] = ()  # parties with a higher quotient whose list was exhausted (rule 3)

    def as_json(self) -> dict:
        return {
            "seat": self.seat,
            "party": self.party,
            "votes": self.votes,
            "divisor": self.divisor,
            "quotient": round(float(self.quotient), 3),
            "tie": self.tie,
            **({"skipped": list(self.skipped)} if self.skipped else {}),
        }


@dataclass
class DapilSeats:
    dapil: str
    seats: int
    parties: list[dict] = field(default_factory=list)  # {"party", "votes", "seats"}, by party code
    elected: list[str] = field(default_factory=list)  # candidate codes, by party then list position
    steps: list[Step] = field(default_factory=list)
    ties: list[str] = field(default_factory=list)  # what a tie rule decided, in words
    margin: dict | None = None  # the last seat and how many more votes the runner-up needs for it

    def as_json(self) -> dict:
        return {
            "dapil": self.dapil,
            "seats": self.seats,
            "parties": self.parties,
            "elected": self.elected,
            "margin": self.margin,
            "ties": self.ties,
            "steps": [s.as_json() for s in self.steps],
        }


def _rank(votes: Mapping[str, int]) -> dict[str, tuple[int, str]]:
    """Rule 1's order: more votes first, then the lower code; as a sort key."""
    return {p: (-n, p) for p, n in votes.items()}


def sainte_lague(
    seats: int, votes: Mapping[str, int], listed: Mapping[str, int] | None = None
) -> list[Step]:
    """The seats of one dapil, one step a seat: each to the highest quotient votes / (2s + 1) left.
    `listed` caps a party at its number of candidates (rule 3); parties with no votes win
    nothing."""
    won = dict.fromkeys(votes, 0)
    rank = _rank(votes)
    steps: list[Step] = []
    for seat in range(1, seats + 1):
        open_ = [p for p, n in votes.items() if n > 0]
        if not open_:
            break
        quotient = {p: Fraction(votes[p], 2 * won[p] + 1) for p in open_}
        order = sorted(open_, key=lambda p: (-quotient[p], rank[p]))
        skipped = []
        for party in order:
            if listed is None or won[party] < listed.get(party, 0):
                break
            skipped.append(party)
        else:
            break  # every list is exhausted: the seat stays empty
        tie = any(quotient[p] == quotient[party] for p in order if p != party and p not in skipped)
        steps.append(
            Step(
                seat, party, votes[party], 2 * won[party] + 1, quotient[party], tie, tuple(skipped)
            )
        )
        won[party] += 1
    return steps


def _margin(
    steps: list[Step], votes: Mapping[str, int], listed: Mapping[str, int] | None
) -> dict | None:
    """The last seat's quotient, the runner-up (another party, the best quotient left over), and how
    many more votes the runner-up needs to take the last seat outright."""
    if not steps:
        return None
    last = steps[-1]
    won: dict[str, int] = {}
    for step in steps:
        won[step.party] = won.get(step.party, 0) + 1
    runners = [
        p
        for p, n in votes.items()
        if n > 0 and p != last.party and (listed is None or won.get(p, 0) < listed.get(p, 0))
    ]
    if not runners:
        return {"party": last.party, "quotient": round(float(last.quotient), 3), "runner_up": None}
    rank = _rank(votes)
    runner = min(runners, key=lambda p: (-Fraction(votes[p], 2 * won.get(p, 0) + 1), rank[p]))
    divisor = 2 * won.get(runner, 0) + 1
    needed = (
        int(last.quotient * divisor - votes[runner]) + 1
    )  # the fewest more votes for a higher quotient
    return {
        "party": last.party,
        "quotient": round(float(last.quotient), 3),
        "runner_up": runner,
        "runner_up_quotient": round(votes[runner] / divisor, 3),
        "votes_needed": max(needed, 0),
    }


def _elect(
    party: str, seats: int, candidates: list[str], votes: Mapping[str, int]
) -> tuple[list[str], str | None]:
    """A party's `seats` go to its candidates with the most votes; equal votes: list order (rule
    2)."""
    order = sorted(candidates, key=lambda c: (-votes.get(c, 0), candidates.index(c)))
    chosen = order[:seats]
    tie = None
    if 0 < seats < len(order) and votes.get(order[seats - 1], 0) == votes.get(order[seats], 0):
        tie = (
            f"{party}: {order[seats - 1]} and {order[seats]} have {votes.get(order[seats], 0)} "
            "votes each; list order decided"
        )
    return sorted(chosen, key=candidates.index), tie


def dapil_seats(
    dapil: str,
    seats: int,
    choices: Iterable[str],
    votes: Mapping[str, int],
    takes_part: Mapping[str, bool],
) -> DapilSeats:
    """A party-list dapil (DPR, DPRD): party totals, seats by Sainte-Lague among the parties that
    take part, and the candidates elected. `choices` are the contest's (they say who is listed)."""
    totals = party_totals({c: votes.get(c, 0) for c in choices})
    listed = {p: len(c) for p, c in candidates_of(choices).items()}
    running = {p: n for p, n in totals.items() if takes_part.get(p, True)}
    steps = sainte_lague(seats, running, listed)
    result = DapilSeats(dapil, seats, steps=steps, margin=_margin(steps, running, listed))
    won: dict[str, int] = {}
    for step in steps:
        won[step.party] = won.get(step.party, 0) + 1
        if step.tie:
            result.ties.append(
                f"seat {step.seat}: equal quotients; {step.party} has more votes or the lower "
                "number"
            )
        if step.skipped:
            result.ties.append(
                f"seat {step.seat}: {', '.join(step.skipped)} listed too few candidates; it went on"
            )
    result.parties = [{"party": p, "votes": n, "seats": won.get(p, 0)} for p, n in totals.items()]
    by_party = candidates_of(choices)
    for party in sorted(won):
        chosen, tie = _elect(party, won[party], by_party[party], votes)
        result.elected += chosen
        if tie:
            result.ties.append(tie)
    return result


def dpd_seats(
    dapil: str, seats: int, choices: Iterable[str], votes: Mapping[str, int]
) -> DapilSeats:
    """DPD: the `seats` candidates with the most votes in the province; equal votes: the lower
    number."""
    candidates = list(choices)
    chosen, tie = _elect("DPD", seats, candidates, votes)
    result = DapilSeats(dapil, seats, elected=chosen, ties=[tie] if tie else [])
    order = sorted(candidates, key=lambda c: (-votes.get(c, 0), candidates.index(c)))
    if 0 < seats < len(order):
        last, runner = order[seats - 1], order[seats]
        result.margin = {
            "candidate": last,
            "votes": votes.get(last, 0),
            "runner_up": runner,
            "runner_up_votes": votes.get(runner, 0),
            "votes_needed": votes.get(last, 0) - votes.get(runner, 0) + 1,
        }
    return result


@dataclass(frozen=True)
class Dapil:
    """What seats need of one dapil: its code, seats, choices, current votes per choice, and the
    region whose body it elects (province for DPRD provinsi, regency for DPRD kab/kota)."""

    code: str
    seats: int
    choices: tuple[str, ...]
    votes: Mapping[str, int]
    body: str = "ID"


def ballot_seats(ballot: str, dapils: Iterable[Dapil], threshold: Fraction | None) -> dict:
    """Every dapil of a ballot, and the seats per party of each body it elects: the nation for DPR,
    each province for DPRD provinsi, each regency for DPRD kab/kota. The threshold applies to DPR
    only."""
    dapils = sorted(dapils, key=lambda d: d.code)
    applied = threshold if ballot == "DPR" else None
    national: dict[str, int] = {}
    for d in dapils:
        for party, n in party_totals(d.votes).items():
            national[party] = national.get(party, 0) + n
    takes_part = passing(national, applied)
    results = []
    bodies: dict[str, dict[str, int]] = {}
    for d in dapils:
        if ballot == "DPD":
            seated = dpd_seats(d.code, d.seats, d.choices, d.votes)
        else:
            seated = dapil_seats(d.code, d.seats, d.choices, d.votes, takes_part)
            body = bodies.setdefault(d.body, {})
            for row in seated.parties:
                body[row["party"]] = body.get(row["party"], 0) + row["seats"]
        results.append(seated.as_json())
    valid = sum(national.values())
    national_seats = {p: sum(b.get(p, 0) for b in bodies.values()) for p in national}
    return {
        "ballot": ballot,
        "threshold": float(applied) if applied is not None else None,
        "national": [
            {
                "party": p,
                "votes": n,
                "share": round(n / valid, 6) if valid else 0.0,
                "passes": takes_part[p],
                "seats": national_seats[p],
            }
            for p, n in sorted(national.items())
        ],
        "bodies": []
        if ballot in ("DPR", "DPD")
        else [
            {
                "region": region,
                "seats": sum(b.values()),
                "parties": [{"party": p, "seats": k} for p, k in sorted(b.items()) if k],
            }
            for region, b in sorted(bodies.items())
        ],
        "dapils": results,
    }
