"""What a worker watches on a timer: whether the broker answers, and which partitions wait.

Each is a small state machine fed by the worker's timers (`streams.kafka.worker`): it decides what
to log and what to tell ClickHouse, and holds no client of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("tally.worker")

Stall = tuple[int, str, float]  # offset it waits at, reason, since
NO_STALL: Stall = (-1, "", 0.0)


class BrokerWatch:
    """One line when the broker stops answering, a reminder every `remind_s`, one when it is back
    (aiokafka's own complaints are held back meanwhile)."""

    def __init__(
        self, poll_s: float, remind_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.polls_a_reminder = max(1, round(remind_s / poll_s))
        self.clock = clock
        self.down_since: list[float] = []  # times of the failed polls of the outage now

    @property
    def up(self) -> bool:
        return not self.down_since

    def failed(self, exc: BaseException) -> None:
        self.down_since.append(self.clock())
        polls = len(self.down_since)
        if polls == 1:
            log.warning(
                "the broker does not answer (%s); nothing is acked meanwhile", type(exc).__name__
            )
        elif polls % self.polls_a_reminder == 1:
            away = self.down_since[-1] - self.down_since[0]
            log.warning(
                "the broker still does not answer after %.0f s (%d failed polls)", away, polls
            )

    def answered(self) -> None:
        if self.down_since:
            away, polls = self.clock() - self.down_since[0], len(self.down_since)
            self.down_since.clear()
            log.warning("the broker answers again after %.0f s and %d failed polls", away, polls)


class StallReport:
    """Which partitions wait on a batch they cannot read, as ClickHouse was last told (`tally
    status`): only what changed is sent, and a report ClickHouse did not take is sent again next
    time."""

    def __init__(self) -> None:
        self.told: dict[int, Stall] = {}

    def changes(self, now: Mapping[int, Stall]) -> dict[int, Stall]:
        """Per partition whose stall changed, its stall now (NO_STALL once it reads again)."""
        return {
            p: now.get(p, NO_STALL)
            for p in set(now) | set(self.told)
            if now.get(p) != self.told.get(p)
        }

    def rows(
        self, topic: str, worker: str, changed: Mapping[int, Stall]
    ) -> list[tuple[str, int, int, str, str]]:
        return [
            (topic, p, offset, reason, worker) for p, (offset, reason, _) in sorted(changed.items())
        ]

    def taken(self, now: Mapping[int, Stall]) -> None:
        self.told = dict(now)
