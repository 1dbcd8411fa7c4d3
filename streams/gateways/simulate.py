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

    def events() -> Iterator[bytes]:
        rng = random.Random(plan.seed * 7919 + 1)
        found: dict[tuple[str, str], ContestAt | None] = {}
        choices_of = {
            c["dapil"]: tuple(x["code"] for x in c["choices"]) for c in shape.contests
        }  # shared by its TPS
        by_region = {(c["ballot"], r): c for c in shape.contests for r in c["regions"]}
        models_of: dict[tuple[str, str], VoteModel | None] = {}  # (dapil, province) -> model

        def contest_at(ballot: str, tps: str) -> ContestAt | None:
            key = (ballot, tps[:6])  # a DPRD kab/kota dapil is a set of districts
            if key not in found:
                found[key] = None
                for prefix in (NATIONAL, tps[:2], tps[:4], tps[:6]):
                    contest = by_region.get((ballot, prefix))
                    if contest is not None:
                        dapil = contest["dapil"]
                        if (dapil, tps[:2]) not in models_of:
                            models_of[(dapil, tps[:2])] = vote_model(contest, plan.seed, tps[:2])
                        found[key] = ContestAt(
                            choices_of[dapil], dapil, models_of[(dapil, tps[:2])]
                        )
                        break
            return found[key]

        order = [
            (i, b)
            for i in range(len(shape.tps))
            for b in plan.ballots
            if contest_at(b, shape.tps[i]) is not None
        ]
        rng.shuffle(order)
        later: list[
            tuple[int, int, bytes]
        ] = []  # heap of (release position, seq, event): late resends and corrections
        seq = 0
        for position, (i, ballot) in enumerate(order):
            while later and later[0][0] <= position:
                yield heapq.heappop(later)[2]
            tps = shape.tps[i]
            at = contest_at(ballot, tps)
            seq += 1
            gateway = f"gw-{tps[:2]}-{int(tps[2:4]) % 4 + 1:02d}"
            arrived = POLLS_CLOSE + timedelta(hours=arrival_hours(position / max(1, len(order))))
            clock = arrived.isoformat(timespec="seconds")
            sheet = tps_sheet(
                plan.seed, i, shape.dpt[i]
            )  # every ballot of the TPS: the same voters
            tally = make_tally(
                rng,
                tps,
                ballot,
                shape.dpt[i],
                at.choices,
                1,
                f"{gateway}:{seq:08d}",
                gateway,
                clock,
                model=at.model,
                sheet=sheet,
            )
            if plan.signed:
                sign(tally, shape.secret_key(i), key_id_of(tps))
            if plan.invalid and rng.random() < plan.invalid:
                yield break_tally(
                    rng, tally, shape.secret_key(i) if plan.signed else None
                )  # never counted
                continue
            if plan.forged and rng.random() < plan.forged:
                seq += 1
                other = (
                    (i + 1 + rng.randrange(len(shape.tps) - 1)) % len(shape.tps)
                    if len(shape.tps) > 1
                    else i
                )
                forgery = forge(
                    rng,
                    tally,
                    f"{gateway}:{seq:08d}",
                    shape.secret_key(other),
                    key_id_of(shape.tps[other]),
                )
                if forgery is not None:
                    # Before the real one: had it counted, the real tally would be a mere duplicate.
                    yield forgery
            raw = orjson.dumps(tally)
            truth.record(tally, at.choices, at.dapil)
            yield raw
            if plan.duplicates and rng.random() < plan.duplicates:
                heapq.heappush(
                    later, (position + rng.choice((1, 50, len(order) // 3 + 1)), seq, raw)
                )
            if plan.corrections and rng.random() < plan.corrections:
                seq += 1
                fixed = make_tally(
                    rng,
                    tps,
                    ballot,
                    shape.dpt[i],
                    at.choices,
                    2,
                    f"{gateway}:{seq:08d}",
                    gateway,
                    clock,
                    model=at.model,
                    sheet=sheet,
                )
                if plan.signed:
                    sign(fixed, shape.secret_key(i), key_id_of(tps))
                truth.record(fixed, at.choices, at.dapil)
                heapq.heappush(later, (position + rng.randint(1, 200), seq, orjson.dumps(fixed)))
        while later:
            yield heapq.heappop(later)[2]

    return shape, events(), truth
