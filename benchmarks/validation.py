"""Validation throughput on one core: decode (tally.v1) + every rule with the registry, in events/s,
and the same with the Ed25519 signature check in front (issue 8).

Baseline in the same run: orjson.loads alone over the same bytes (the floor cost of reading events).
Usage: .venv/bin/python benchmarks/validation.py [--tps 20000] [--ballots PPWP,DPR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

import orjson

from streams.core.contract import decode_tally
from streams.core.registry import Registry
from streams.core.signatures import check_signature, epoch
from streams.core.validate import validate_tally
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate


def best_rate(fn, events: list[bytes], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        fn(events)
        best = max(best, len(events) / (time.perf_counter() - started))
    return best


def validate_all(registry: Registry):
    def run(events: list[bytes]) -> None:
        for raw in events:
            decoded = decode_tally(raw)
            if decoded.tally is not None:
                validate_tally(decoded.tally, registry)

    return run


def verify_and_validate_all(registry: Registry):
    received = epoch("2024-02-14T20:00:00+07:00")

    def run(events: list[bytes]) -> None:
        for raw in events:
            decoded = decode_tally(raw)
            if decoded.tally is not None:
                check_signature(decoded.tally, registry.keys, True, received)
                validate_tally(decoded.tally, registry)

    return run


def load_all(events: list[bytes]) -> None:
    for raw in events:
        with contextlib.suppress(orjson.JSONDecodeError):
            orjson.loads(raw)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=20000)
    parser.add_argument("--ballots", default="PPWP")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})  # one core
    shape, stream, _ = generate(Plan(args.tps, 1, tuple(args.ballots.split(",")), invalid=0.005))
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    baseline = best_rate(load_all, events, args.repeat)
    rate = best_rate(validate_all(registry), events, args.repeat)
    signed = best_rate(verify_and_validate_all(registry), events, args.repeat)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"events: {len(events)} ({args.ballots}), mean {sum(map(len, events)) / len(events):.0f} bytes")
    print(f"baseline orjson.loads: {baseline:,.0f} events/s")
    print(f"decode + validate:     {rate:,.0f} events/s  (ratio {rate / baseline:.2f})")
    print(f"decode + verify signature + validate: {signed:,.0f} events/s  (ratio {signed / baseline:.2f})")


if __name__ == "__main__":
    main()
