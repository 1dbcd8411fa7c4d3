"""Partitions a worker cannot read, and when to try them again.

A record batch the consumer cannot unpack (a codec whose library is missing, a corrupt or hostile
batch) stops only its own partition: it waits at the offset of that batch, nothing after it is read,
nothing is skipped or acked, and the other partitions go on. It says so once, then every REMIND_S,
in the log, the metrics and `tally status`; every RETRY_S the consumer reads the partition again,
and the count resumes by itself once the batch can be read. Written from the consumer's thread, read
from the worker's loop: one lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.kafka.logs import REMIND_S

log = logging.getLogger("tally.worker")
RETRY_S = 5.0


@dataclass
class Stall:
    offset: int
    reason: str
    since: float  # time.time() of the first failure
    retry_at: float  # monotonic
    reminded: float  # monotonic
    failures: int = 1


class Stalls:
    def __init__(
        self, retry_s: float = RETRY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.retry_s = retry_s
        self.clock = clock
        self._lock = threading.Lock()
        self._stalls: dict[int, Stall] = {}

    def failed(self, partition: int, offset: int, exc: BaseException) -> None:
        """The batch at `offset` of `partition` could not be read."""
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        now = self.clock()
        with self._lock:
            stall = self._stalls.get(partition)
            if stall is None or stall.offset != offset:
                self._stalls[partition] = Stall(
                    offset, reason, time.time(), now + self.retry_s, now
                )
                log.error(
                    "partition %d cannot be read at offset %d (%s): it waits there, nothing after "
                    "it is read or skipped; "
                    "the other partitions go on; trying again every %.0f s",
                    partition,
                    offset,
                    reason,
                    self.retry_s,
                )
                return
            stall.failures += 1
            stall.reason = reason
            stall.retry_at = now + self.retry_s
            if now - stall.reminded >= REMIND_S:
                stall.reminded = now
                log.error(
                    "partition %d still cannot be read at offset %d after %.0f s and %d tries (%s)",
                    partition,
                    offset,
                    time.time() - stall.since,
                    stall.failures,
                    reason,
                )

    def read(self, partition: int) -> None:
        """Records of `partition` were read: if it waited, it reads again."""
        with self._lock:
            stall = self._stalls.pop(partition, None)
        if stall is not None:
            log.warning(
                "partition %d reads again at offset %d after %.0f s and %d failed tries",
                partition,
                stall.offset,
                time.time() - stall.since,
                stall.failures,
            )

    def waiting(self) -> set[int]:
        """Partitions that wait and are not due for another try."""
        now = self.clock()
        with self._lock:
            return {p for p, s in self._stalls.items() if s.retry_at > now}

    def forget(self, partitions: set[int]) -> None:
        """Partitions this worker no longer holds: their next owner finds out for itself."""
        with self._lock:
            for partition in partitions:
                self._stalls.pop(partition, None)

    def snapshot(self) -> dict[int, tuple[int, str, float]]:
        """partition -> (offset it waits at, reason, since as Unix time)."""
        with self._lock:
            return {p: (s.offset, s.reason, s.since) for p, s in self._stalls.items()}
