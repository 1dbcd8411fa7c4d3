"""A simulated night: the registry's shape, the event stream in arrival order (first reports, late
duplicates, corrections, broken and forged submissions) and the truth those events add up to.
Deterministic: the same plan gives the same bytes."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import orjson

from streams.core.regions import NATIONAL
from streams.gateways.shape import Shape, abroad_tps, build_shape, key_id_of, tps_totals
from streams.gateways.tallies import (
    POLLS_CLOSE,
    VoteModel,
    VoterSheet,
    arrival_hours,
    break_tally,
    forge,
    make_tally,
    sign,
    tps_sheet,
    vote_model,
)
from streams.gateways.truth import Truth


class ContestAt(NamedTuple):
    """What a TPS's ballot is: its contest's choices and dapil, and how its votes split."""

    choices: tuple[str, ...]
    dapil: str
    model: VoteModel | None


@dataclass(frozen=True)
class Plan:
    n_tps: int
    seed: int
    ballots: tuple[str, ...] = ("PPWP",)
    duplicates: float = 0.0
    corrections: float = 0.0
    invalid: float = 0.0
    forged: float = 0.0  # share of (TPS, ballot) that also get a forged event (never counted)
    signed: bool = True  # devices sign their tallies
    abroad: bool | None = (
        None  # TPS abroad too (2024's 3,059 at this scale); None: only on a national night
    )


def generate(plan: Plan, shape: Shape | None = None) -> tuple[Shape, Iterator[bytes], Truth]:
    """The registry, the event stream (JSON bytes, in arrival order), and the truth (complete once
    the stream is drained)."""
    shape = shape or build_shape(
        plan.n_tps, plan.seed, plan.ballots, abroad_tps(plan.n_tps, plan.abroad)
    )
    truth = Truth(tps_total=tps_totals(shape, plan.ballots), contests=shape.contests)
    return shape, iter(Night(plan, shape, truth)), truth


class Night:
    """The events of one simulated night, in arrival order, recorded in the truth as they go out.
    One random generator drives it all, so the same plan gives the same bytes."""

    def __init__(self, plan: Plan, shape: Shape, truth: Truth) -> None:
        self.plan, self.shape, self.truth = plan, shape, truth
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.found: dict[tuple[str, str], ContestAt | None] = {}
        # A dapil's choices, shared by its TPS.
        self.choices_of = {
            c["dapil"]: tuple(x["code"] for x in c["choices"]) for c in shape.contests
        }
        self.by_region = {(c["ballot"], r): c for c in shape.contests for r in c["regions"]}
        self.models_of: dict[tuple[str, str], VoteModel | None] = {}  # (dapil, province) -> model
        self.seq = 0

    def contest_at(self, ballot: str, tps: str) -> ContestAt | None:
        key = (ballot, tps[:6])  # a DPRD kab/kota dapil is a set of districts
        if key not in self.found:
            self.found[key] = None
            for prefix in (NATIONAL, tps[:2], tps[:4], tps[:6]):
                contest = self.by_region.get((ballot, prefix))
                if contest is not None:
                    dapil = contest["dapil"]
                    if (dapil, tps[:2]) not in self.models_of:
                        model = vote_model(contest, self.plan.seed, tps[:2])
                        self.models_of[(dapil, tps[:2])] = model
                    model = self.models_of[(dapil, tps[:2])]
                    self.found[key] = ContestAt(self.choices_of[dapil], dapil, model)
                    break
        return self.found[key]

    def __iter__(self) -> Iterator[bytes]:
        shape, plan = self.shape, self.plan
        order = [
            (i, b)
            for i in range(len(shape.tps))
            for b in plan.ballots
            if self.contest_at(b, shape.tps[i]) is not None
        ]
        self.rng.shuffle(order)
        # A heap of (release position, seq, event): late resends and corrections.
        later: list[tuple[int, int, bytes]] = []
        for position, (i, ballot) in enumerate(order):
            while later and later[0][0] <= position:
                yield heapq.heappop(later)[2]
            yield from self._arrivals(position, len(order), i, ballot, later)
        while later:
            yield heapq.heappop(later)[2]

    def _arrivals(
        self, position: int, n: int, i: int, ballot: str, later: list[tuple[int, int, bytes]]
    ) -> Iterator[bytes]:
        """What one TPS's ballot sends when its turn comes: a broken event, or its tally (after a
        forgery of it, if one is planned), and a duplicate and a correction put in `later`."""
        shape, plan, rng = self.shape, self.plan, self.rng
        tps = shape.tps[i]
        at = self.contest_at(ballot, tps)
        assert at is not None  # the order holds only ballots the TPS has
        self.seq += 1
        gateway = f"gw-{tps[:2]}-{int(tps[2:4]) % 4 + 1:02d}"
        arrived = POLLS_CLOSE + timedelta(hours=arrival_hours(position / max(1, n)))
        clock = arrived.isoformat(timespec="seconds")
        sheet = tps_sheet(plan.seed, i, shape.dpt[i])  # every ballot of the TPS: the same voters
        tally = self._tally(i, ballot, at, 1, gateway, clock, sheet)
        if plan.invalid and rng.random() < plan.invalid:
            # never counted
            yield break_tally(rng, tally, shape.secret_key(i) if plan.signed else None)
            return
        if plan.forged and rng.random() < plan.forged:
            forgery = self._forgery(i, tally, gateway)
            if forgery is not None:
                # Before the real one: had it counted, the real tally would be a mere duplicate.
                yield forgery
        raw = orjson.dumps(tally)
        self.truth.record(tally, at.choices, at.dapil)
        yield raw
        if plan.duplicates and rng.random() < plan.duplicates:
            heapq.heappush(later, (position + rng.choice((1, 50, n // 3 + 1)), self.seq, raw))
        if plan.corrections and rng.random() < plan.corrections:
            self.seq += 1
            fixed = self._tally(i, ballot, at, 2, gateway, clock, sheet)
            self.truth.record(fixed, at.choices, at.dapil)
            heapq.heappush(later, (position + rng.randint(1, 200), self.seq, orjson.dumps(fixed)))

    def _tally(
        self,
        i: int,
        ballot: str,
        at: ContestAt,
        revision: int,
        gateway: str,
        clock: str,
        sheet: VoterSheet,
    ) -> dict:
        tps = self.shape.tps[i]
        tally = make_tally(
            self.rng,
            tps,
            ballot,
            self.shape.dpt[i],
            at.choices,
            revision,
            f"{gateway}:{self.seq:08d}",
            gateway,
            clock,
            model=at.model,
            sheet=sheet,
        )
        if self.plan.signed:
            sign(tally, self.shape.secret_key(i), key_id_of(tps))
        return tally

    def _forgery(self, i: int, tally: dict, gateway: str) -> bytes | None:
        shape, rng = self.shape, self.rng
        self.seq += 1
        other = (
            (i + 1 + rng.randrange(len(shape.tps) - 1)) % len(shape.tps)
            if len(shape.tps) > 1
            else i
        )
        return forge(
            rng,
            tally,
            f"{gateway}:{self.seq:08d}",
            shape.secret_key(other),
            key_id_of(shape.tps[other]),
        )
