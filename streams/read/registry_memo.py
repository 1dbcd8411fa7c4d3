"""What the read side derives from the registry alone (region names, TPS and DPT totals, choice
names, which regions exist), kept while the registry stays the same.

The registry changes on `tally registry load` and key revocations, each of which adds a row to
registry_loads; the count changes by themselves only with it. A results view refreshed every second
read it again each time (four of its five statements, while the totals were one), which loaded the
embedded server that TPS pages and the workers share."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar

T = TypeVar("T")

PROBE_S = 1.0  # how late a registry change may be seen: as late as a cached view's answer
ANSWERS = 4096  # kept at most: readers choose the scopes, so their number is bounded here


class Memo(Protocol):
    def get(self, key: Hashable, build: Callable[[], T]) -> T: ...


class Direct:
    """No memory: every answer is read (the CLI, and whoever reads once)."""

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        return build()


DIRECT = Direct()


class RegistryMemo:
    """Answers kept while the registry's `version` (clickhouse.registry_store.registry_version) is
    the one they were read under; it is asked at most once per `probe_s`, by whoever asks first
    after that."""

    def __init__(
        self,
        version: Callable[[], int],
        probe_s: float = PROBE_S,
        clock: Callable[[], float] = time.monotonic,
        max_answers: int = ANSWERS,
        pinned: frozenset[Hashable] = frozenset(),
    ) -> None:
        self.read_version, self.probe_s, self.clock = version, probe_s, clock
        self.max_answers = max_answers
        # Kept whatever readers ask (the DPT every TPS page reads), and not counted in max_answers.
        self.pinned = pinned
        self.kept_pinned: dict[Hashable, object] = {}
        self.version: int | None = None
        self.probed_at = -float("inf")
        self.answers: OrderedDict[Hashable, object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self.lock:  # one probe at a time: the others wait for it, not for one each
            if self.clock() - self.probed_at >= self.probe_s:
                version = self.read_version()
                self.probed_at = self.clock()
                if version != self.version:
                    self.answers.clear()
                    self.kept_pinned.clear()
                    self.version = version
            version = self.version
            if key in self.kept_pinned:
                return self.kept_pinned[key]  # type: ignore[return-value]
            if key in self.answers:
                self.answers.move_to_end(key)
                return self.answers[key]  # type: ignore[return-value]
        answer = build()
        with self.lock:
            if self.version == version and key in self.pinned:
                self.kept_pinned[key] = answer
            elif self.version == version:  # read under the version it is kept for
                self.answers[key] = answer
                while len(self.answers) > self.max_answers:
                    self.answers.popitem(last=False)
        return answer
