"""Region levels and codes: a TPS code names every region above it by its prefix."""

from __future__ import annotations

LEVELS = ("national", "province", "regency", "district", "village", "tps")
REGION_LEVELS = LEVELS[:-1]
NATIONAL = "ID"
PREFIX_LENGTH = {"province": 2, "regency": 4, "district": 6, "village": 10, "tps": 13}
LEVEL_OF_LENGTH = {n: level for level, n in PREFIX_LENGTH.items()}


def region_of(tps: str, level: str) -> str:
    """The code of the region at `level` that holds this TPS ("ID" for national)."""
    return NATIONAL if level == "national" else tps[: PREFIX_LENGTH[level]]


def level_of(code: str) -> str:
    if code == NATIONAL:
        return "national"
    try:
        return LEVEL_OF_LENGTH[len(code)]
    except KeyError:
        raise ValueError(
            f"{code!r} is not a region code (2, 4, 6, 10 or 13 digits, or {NATIONAL})"
        ) from None


def child_level(level: str) -> str:
    return LEVELS[LEVELS.index(level) + 1]


def digits(text: str, most: int = 18) -> bool:
    """Whether `text` is 1 to `most` ASCII digits. str.isdigit() also takes '²', '٣' and '３', which
    int() then reads as other numbers or refuses; 18 digits always fit a ClickHouse UInt64."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()
