"""Ed25519 checks of a batch on a few threads, while the worker's own thread validates the batch.

libsodium (PyNaCl, through cffi) releases the GIL for the curve arithmetic, ~45 us of the ~55 us a
check costs here, so checks on two threads run side by side on two cores (measured: 44 -> 26 us a
check of wall time, benchmarks/validation.py). ed25519-zebra's bindings verify faster on one thread
but hold the GIL, and accept what libsodium refuses (ZIP 215 rules), so tally keeps libsodium
(RESULTS.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from streams.core.pipeline import verify_here
from streams.core.reasons import Finding
from streams.core.signatures import Signed

# Below this many checks a batch is verified on the deciding thread: handing work over costs more.
MIN_SHARED = 64


def _verify_all(jobs: Sequence[Signed]) -> list[Finding | None]:
    return [job.verify() for job in jobs]


class ThreadVerifier:
    """A `pipeline.Verifier` that splits a batch's checks into one contiguous share per thread."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="tally-verify") if threads > 1 else None
        )

    def __call__(self, jobs: Sequence[Signed]) -> Callable[[], list[Finding | None]]:
        if self.pool is None or len(jobs) < MIN_SHARED:
            return verify_here(jobs)
        size = -(-len(jobs) // self.threads)
        shares = [
            self.pool.submit(_verify_all, jobs[i : i + size]) for i in range(0, len(jobs), size)
        ]
        return lambda: [finding for share in shares for finding in share.result()]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
