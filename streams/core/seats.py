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
from enum import StrEnum
from fractions import Fraction

LEGISLATIVE = ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB")
PARTY_BALLOTS = ("DPR", "DPRD_PROV", "DPRD_KAB")  # DPD elects individuals
DPR_THRESHOLD = Fraction(4, 100)  # 2024's; `TALLY_DPR_THRESHOLD` changes it
# the body a DPRD dapil elects: its province, its regency
BODY_LEVEL = {"DPRD_PROV": 2, "DPRD_KAB": 4}


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
        # party_of, inline: verify calls this for every TPS
        if choice[:1] == "P" and len(choice) >= 3:
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


class Tie(StrEnum):
    """The tie rules (module docstring), by what they decided."""

    EQUAL_QUOTIENT = "equal_quotient"  # rule 1: a seat between equal quotients
    EQUAL_CANDIDATE_VOTES = (
        "equal_candidate_votes"  # rule 2: a party's last seat between candidates
    )
    EXHAUSTED_LIST = "exhausted_list"  # rule 3: a quotient passed over, its party's list used up


@dataclass(frozen=True)
class TieNote:
    """What one tie rule decided."""

    rule: Tie
    seat: int | None = None  # the seat it decided (rules 1 and 3)
    party: str = ""  # who took the seat (1), whose candidates tied (2; "DPD" for DPD)
    passed_over: tuple[str, ...] = ()  # rule 3: the parties whose lists were exhausted
    candidates: tuple[str, ...] = ()  # rule 2: the last elected and the first not
    votes: int = 0  # rule 2: the votes each of them has


@dataclass(frozen=True)
class Step:
    """One seat, in the order the seats were won, with the quotient table it was chosen from."""

    seat: int  # 1-based
    party: str
    votes: int
    divisor: int  # 1, 3, 5, ..
    quotient: Fraction
    tie: bool = False  # another party had the same quotient: rule 1 decided
    skipped: tuple[
        str, ...
    ] = ()  # parties with a higher quotient whose list was exhausted (rule 3)
    quotients: tuple[tuple[str, Fraction], ...] = ()  # every open party's quotient, best first


@dataclass(frozen=True)
class PartyMargin:
    """A party-list dapil's last seat: its quotient, the best quotient left over (another party's)
    and how many more votes that party needs to take the seat outright."""

    party: str
    quotient: Fraction
    runner_up: str | None = None  # None: no other party could take it
    runner_up_quotient: Fraction | None = None
    votes_needed: int | None = None


@dataclass(frozen=True)
class CandidateMargin:
    """DPD's last seat: the last elected candidate, the first not, and the votes between them."""

    candidate: str
    votes: int
    runner_up: str
    runner_up_votes: int
    votes_needed: int


@dataclass(frozen=True)
class PartySeats:
    party: str
    votes: int
    seats: int


@dataclass
class DapilSeats:
    dapil: str
    seats: int
    parties: list[PartySeats] = field(default_factory=list)  # by party code
    elected: list[str] = field(default_factory=list)  # candidate codes, by party then list position
    steps: list[Step] = field(default_factory=list)
    ties: list[TieNote] = field(default_factory=list)
    margin: PartyMargin | CandidateMargin | None = None


@dataclass(frozen=True)
class NationalParty:
    """A party across a ballot: its votes, share of the valid votes, whether it passes the
    threshold, and its seats in all bodies."""

    party: str
    votes: int
    share: Fraction
    passes: bool
    seats: int


@dataclass(frozen=True)
class Body:
    """A body a ballot elects (a province's DPRD, a regency's) and its seats per party."""

    region: str
    parties: tuple[tuple[str, int], ...]  # (party, seats) of the parties that won any, by code

    @property
    def seats(self) -> int:
        return sum(seats for _, seats in self.parties)


@dataclass(frozen=True)
class BallotSeats:
    ballot: str
    threshold: Fraction | None  # the DPR threshold applied, None for the other ballots
    national: tuple[NationalParty, ...]
    bodies: tuple[Body, ...]  # DPRD bodies; none for DPR and DPD (one national body, or none)
    dapils: tuple[DapilSeats, ...]


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
        table = tuple((p, quotient[p]) for p in order)
        divisor = 2 * won[party] + 1
        steps.append(
            Step(seat, party, votes[party], divisor, quotient[party], tie, tuple(skipped), table)
        )
        won[party] += 1
    return steps


def _margin(
    steps: list[Step], votes: Mapping[str, int], listed: Mapping[str, int] | None
) -> PartyMargin | None:
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
        return PartyMargin(last.party, last.quotient)
    rank = _rank(votes)
    runner = min(runners, key=lambda p: (-Fraction(votes[p], 2 * won.get(p, 0) + 1), rank[p]))
    divisor = 2 * won.get(runner, 0) + 1
    # The fewest more votes for a higher quotient than the last seat's.
    needed = int(last.quotient * divisor - votes[runner]) + 1
    return PartyMargin(
        last.party, last.quotient, runner, Fraction(votes[runner], divisor), max(needed, 0)
    )


def _elect(
    party: str, seats: int, candidates: list[str], votes: Mapping[str, int]
) -> tuple[list[str], TieNote | None]:
    """A party's `seats` go to its candidates with the most votes; equal votes: list order (rule
    2)."""
    order = sorted(candidates, key=lambda c: (-votes.get(c, 0), candidates.index(c)))
    chosen = order[:seats]
    tie = None
    if 0 < seats < len(order) and votes.get(order[seats - 1], 0) == votes.get(order[seats], 0):
        pair = (order[seats - 1], order[seats])
        tie = TieNote(
            Tie.EQUAL_CANDIDATE_VOTES, party=party, candidates=pair, votes=votes.get(pair[1], 0)
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
            result.ties.append(TieNote(Tie.EQUAL_QUOTIENT, seat=step.seat, party=step.party))
        if step.skipped:
            note = TieNote(Tie.EXHAUSTED_LIST, step.seat, step.party, passed_over=step.skipped)
            result.ties.append(note)
    result.parties = [PartySeats(p, n, won.get(p, 0)) for p, n in totals.items()]
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
        ahead, behind = votes.get(last, 0), votes.get(runner, 0)
        result.margin = CandidateMargin(last, ahead, runner, behind, ahead - behind + 1)
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


def ballot_seats(ballot: str, dapils: Iterable[Dapil], threshold: Fraction | None) -> BallotSeats:
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
                body[row.party] = body.get(row.party, 0) + row.seats
        results.append(seated)
    valid = sum(national.values())
    won = {p: sum(b.get(p, 0) for b in bodies.values()) for p in national}
    return BallotSeats(
        ballot,
        applied,
        tuple(
            NationalParty(p, n, Fraction(n, valid) if valid else Fraction(0), takes_part[p], won[p])
            for p, n in sorted(national.items())
        ),
        ()
        if ballot in ("DPR", "DPD")
        else tuple(
            Body(region, tuple((p, k) for p, k in sorted(b.items()) if k))
            for region, b in sorted(bodies.items())
        ),
        tuple(results),
    )
