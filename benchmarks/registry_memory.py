"""What the registry costs a worker: bytes a TPS and a lookup's time, the compact tables against
dicts (the layout before them: DPT as dict[str, int], keys as dict[str, bytes] of packed records).

Every worker holds the whole registry, so its size is paid once a worker (issue 18's 1 GiB target).
The registry is synthetic: N TPS codes with a DPT and one device key each, named `<code>.1`, built
as `read_registry` builds it (the strings made while loading, so they count).
Usage: .venv/bin/python benchmarks/registry_memory.py [--tps 823220] [--probes 200000]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
import tracemalloc

from streams.core.registry import DptTable
from streams.core.signatures import DeviceKey, KeyRing
from streams.ops.provenance import provenance

WINDOW = (1_707_843_600.0, None, None)


def rows(n: int, seed: int = 1) -> list[tuple[int, int, bytes]]:
    rng = random.Random(seed)
    codes = sorted({rng.randrange(11 * 10**11, 95 * 10**11) for _ in range(n)})
    return [(code, rng.randrange(50, 301), rng.randbytes(32)) for code in codes]


def as_dicts(data: list[tuple[int, int, bytes]]) -> tuple[dict, dict]:
    dpt = {f"{code:013d}": n for code, n, _ in data}
    keys = {
        f"{code:013d}.1": pk + (0).to_bytes(4, "little") + f"{code:013d}".encode()
        for code, _, pk in data
    }
    return dpt, keys


def as_tables(data: list[tuple[int, int, bytes]]) -> tuple[DptTable, KeyRing]:
    dpt = DptTable((f"{code:013d}", n) for code, n, _ in data)
    keys = KeyRing(
        (f"{code:013d}.1", DeviceKey(f"{code:013d}", pk, *WINDOW)) for code, _, pk in data
    )
    len(dpt), len(keys)  # sealed, as a worker's first lookup would
    return dpt, keys


def measure(build, data) -> tuple[float, object]:
    gc.collect()
    tracemalloc.start()
    built = build(data)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / len(data), built


def lookup_us(dpt, keys, probes: list[str], ring: bool) -> float:
    started = time.perf_counter()
    for code in probes:
        dpt.get(code)
        keys.lookup(f"{code}.1") if ring else keys.get(f"{code}.1")
    return (time.perf_counter() - started) / len(probes) * 1e6


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=823_220)
    parser.add_argument("--probes", type=int, default=200_000)
    args = parser.parse_args()
    data = rows(args.tps)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {len(data):,} TPS")
    dict_bytes, (dpt_d, keys_d) = measure(as_dicts, data)
    table_bytes, (dpt_t, keys_t) = measure(as_tables, data)
    print(f"dicts  {dict_bytes:6.0f} B a TPS ({dict_bytes * len(data) / 2**20:5.0f} MiB)")
    print(
        f"tables {table_bytes:6.0f} B a TPS ({table_bytes * len(data) / 2**20:5.0f} MiB), "
        f"{table_bytes / dict_bytes:.2f}x"
    )
    probes = [f"{code:013d}" for code, _, _ in random.Random(2).choices(data, k=args.probes)]
    # some miss
    probes[::10] = [
        f"{code + 1:013d}" for code, _, _ in random.Random(3).choices(data, k=len(probes[::10]))
    ]
    gc.disable()
    for _ in range(2):  # alternated, the second round reported
        d = lookup_us(dpt_d, keys_d, probes, ring=False)
        t = lookup_us(dpt_t, keys_t, probes, ring=True)
    gc.enable()
    print(f"lookup (DPT and key) dicts {d:.2f} us, tables {t:.2f} us, {t / d:.2f}x")


if __name__ == "__main__":
    main()
