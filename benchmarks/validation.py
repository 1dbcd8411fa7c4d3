"""Validation throughput on one core: decode (tally.v1) + every rule with the registry, in events/s,
and the same with the Ed25519 signature check in front (issue 8). Then the Ed25519 verifiers alone
(issue 18): libsodium through PyNaCl, as the worker uses it, and ed25519-zebra's bindings, each on
one thread and on two (libsodium releases the GIL; zebra's bindings do not).

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
from streams.core.signatures import Signed, check_signature, epoch, prepare_signature
from streams.core.validate import validate_tally
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.ops.provenance import provenance


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


def verifiers(events: list[bytes], registry: Registry, repeat: int) -> dict[str, float]:
    """Microseconds of wall time a verification takes, per verifier and number of threads, over the
    night's signed events (their canonical form built beforehand: only the curve arithmetic is
    timed)."""
    from concurrent.futures import ThreadPoolExecutor

    from nacl.bindings import crypto_sign_open

    jobs = []
    for raw in events:
        tally = decode_tally(raw).tally
        if tally is not None and tally.sig is not None:
            prepared = prepare_signature(tally, registry.keys, True, 0.0)
            if isinstance(prepared, Signed):
                jobs.append(
                    (
                        prepared.signed_message[:64],
                        prepared.signed_message[64:],
                        prepared.public_key,
                    )
                )
    candidates = {"pynacl": lambda sig, msg, key: crypto_sign_open(sig + msg, key)}
    with contextlib.suppress(ImportError):
        import ed25519_zebra

        candidates["zebra"] = lambda sig, msg, key: ed25519_zebra.ed_verify(sig, msg, key)
    timings: dict[str, float] = {}
    for name, verify in candidates.items():

        def run(share: list, verify=verify) -> None:
            for sig, msg, key in share:
                verify(sig, msg, key)

        for threads in (1, 2):
            best = float("inf")
            with ThreadPoolExecutor(threads) as pool:
                for _ in range(repeat):
                    started = time.perf_counter()
                    size = -(-len(jobs) // threads)
                    list(pool.map(run, [jobs[i : i + size] for i in range(0, len(jobs), size)]))
                    best = min(best, (time.perf_counter() - started) / len(jobs) * 1e6)
            timings[f"{name}, {threads} thread{'s' if threads > 1 else ''}"] = best
    return timings


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=20000)
    parser.add_argument("--ballots", default="PPWP")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core
    shape, stream, _ = generate(Plan(args.tps, 1, tuple(args.ballots.split(",")), invalid=0.005))
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    baseline = best_rate(load_all, events, args.repeat)
    rate = best_rate(validate_all(registry), events, args.repeat)
    signed = best_rate(verify_and_validate_all(registry), events, args.repeat)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print(
        f"events: {len(events)} ({args.ballots}), mean {sum(map(len, events)) / len(events):.0f} "
        "bytes"
    )
    print(f"baseline orjson.loads: {baseline:,.0f} events/s")
    print(f"decode + validate:     {rate:,.0f} events/s  (ratio {rate / baseline:.2f})")
    print(
        f"decode + verify signature + validate: {signed:,.0f} events/s  (ratio "
        f"{signed / baseline:.2f})"
    )
    os.sched_setaffinity(0, cores)  # the verifiers on one thread and on two
    for name, us in verifiers(events, registry, args.repeat).items():
        print(f"verify ({name}): {us:.1f} us a signature, wall time")


if __name__ == "__main__":
    main()
