"""An index from int keys to row numbers in two sorted arrays: what every worker holds of the
registry.

A worker holds the whole registry: 823k TPS with their DPT and 823k device keys in 2024. As dicts
under str keys they cost 283 B a TPS, 222 MiB a worker (benchmarks/registry_memory.py); here a key
costs 12 B (an int64 key and a uint32 row) plus its row's columns, and a lookup is one binary search
in C (`bisect` on an array). Rows are added in any order and sorted once, by `seal` or else at the
first lookup; a key added twice keeps its last row, as a dict would."""

from __future__ import annotations

from array import array
from bisect import bisect_left


class IntIndex:
    def __init__(self) -> None:
        self._keys = array("q")
        self._rows = array("I")
        self._pending_keys = array("q")
        self._pending_rows = array("I")

    def add(self, key: int, row: int) -> None:
        self._pending_keys.append(key)
        self._pending_rows.append(row)

    @property
    def sealed(self) -> bool:
        """Whether every row added is sorted in (a lookup then does no more than search)."""
        return not self._pending_keys

    def seal(self) -> None:
        """Sort what was added now, not at the first lookup: a worker seals after loading, so that
        no event pays for sorting 823k keys (and no benchmark counts it as a lookup's time)."""
        if self._pending_keys:
            self._seal()

    def find(self, key: int) -> int:
        """The row of `key`, or -1."""
        if self._pending_keys:
            self._seal()
        keys = self._keys
        i = bisect_left(keys, key)
        return self._rows[i] if i < len(keys) and keys[i] == key else -1

    def items(self) -> list[tuple[int, int]]:
        """(key, row) pairs in key order."""
        self.seal()
        return list(zip(self._keys, self._rows, strict=True))

    def __len__(self) -> int:
        self.seal()
        return len(self._keys)

    def _seal(self) -> None:
        keys = self._keys + self._pending_keys
        rows = self._rows + self._pending_rows
        # A stable sort keeps a key's rows in the order they were added, so the last of a run wins.
        order = sorted(range(len(keys)), key=keys.__getitem__)
        last = [i for i, j in zip(order, order[1:], strict=False) if keys[i] != keys[j]] + order[
            -1:
        ]
        self._keys = array("q", (keys[i] for i in last))
        self._rows = array("I", (rows[i] for i in last))
        self._pending_keys = array("q")
        self._pending_rows = array("I")


class Indexed:
    """A table kept over an `IntIndex` (`_index`): sealed when loaded."""

    _index: IntIndex

    def seal(self) -> None:
        """Sort the rows added so far (see `IntIndex.seal`)."""
        self._index.seal()

    @property
    def sealed(self) -> bool:
        return self._index.sealed


def tps_number(code: str) -> int | None:
    """A TPS code (13 ASCII digits) as an int, else None: `str.isdigit` alone takes other scripts'
    digits."""
    return int(code) if len(code) == 13 and code.isascii() and code.isdigit() else None
