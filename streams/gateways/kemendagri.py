"""The official region list as Kemendagri publishes it: `code,name` lines with dotted codes.

  11,ACEH
  11.01,KAB. ACEH SELATAN
  11.01.01,Bakongan
  11.01.01.2001,Keude Bakongan

becomes registry region records (code without dots: 2, 4, 6, 10 digits; level from the number of
parts)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

from streams.core.regions import NATIONAL

LEVEL_BY_PARTS = {1: "province", 2: "regency", 3: "district", 4: "village"}
_PART_DIGITS = (2, 2, 2, 4)
_DOTTED = re.compile(r"\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?")


class KemendagriError(ValueError):
    """A line of the region list that cannot be read; the message names the line."""


def parse_regions(lines: Iterable[str], source: str = "<input>") -> Iterator[dict]:
    """Registry region records (national first), parents before children, in file order
    otherwise."""
    yield {
        "type": "region",
        "code": NATIONAL,
        "name": "Indonesia",
        "level": "national",
        "parent": "",
    }
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(lines), 1):
        if not row or not "".join(row).strip() or row[0].strip().lower() in ("code", "kode"):
            continue
        if len(row) < 2:
            raise KemendagriError(f"{source}:{number}: expected 'code,name', got {row!r}")
        dotted, name = row[0].strip(), ",".join(row[1:]).strip()
        if not _DOTTED.fullmatch(dotted):
            raise KemendagriError(
                f"{source}:{number}: {dotted!r} is not a dotted region code (11, 11.01, 11.01.01, "
                "11.01.01.2001)"
            )
        parts = dotted.split(".")
        code = "".join(parts)
        parent = "".join(parts[:-1]) or NATIONAL
        if parent != NATIONAL and parent not in seen:
            raise KemendagriError(
                f"{source}:{number}: {dotted} comes before its parent {'.'.join(parts[:-1])}"
            )
        if code in seen:
            raise KemendagriError(f"{source}:{number}: {dotted} appears twice")
        seen.add(code)
        yield {
            "type": "region",
            "code": code,
            "name": name,
            "level": LEVEL_BY_PARTS[len(parts)],
            "parent": parent,
        }
