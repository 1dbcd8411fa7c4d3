"""Registry files (schemas/registry.v1.schema.json): JSON Lines read and written a record at a time,
so a national registry (820k TPS and their device keys) never sits in memory whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson


def read_records(path: Path) -> Iterator[dict]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc


def write_records(path: Path, records: Iterable[dict]) -> int:
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")
            count += 1
    return count
