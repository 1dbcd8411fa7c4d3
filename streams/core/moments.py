"""Moments a reader names: "results as of TIME" and the change feed's cursors. Pure: text in, UTC
out.

A moment is ISO 8601 with an offset (`2024-02-14T21:00:00+07:00`, `...Z`) or epoch seconds
(`1707919200`, `1707919200.5`). A local time without an offset is refused: on election night WIB,
WITA and WIT are all in use, and a guessed zone would move results by hours.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_EPOCH = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


class MomentError(ValueError):
    """A moment that cannot be read; the message says what is accepted."""


def parse_moment(text: str) -> datetime:
    """The UTC moment named by `text` (see the module's doc), or a MomentError."""
    text = text.strip()
    if _EPOCH.match(text):
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, ValueError, OSError):
            raise MomentError(f"{text!r} is out of range for epoch seconds") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MomentError(
            f"{text!r} is not a moment: use ISO 8601 with an offset (2024-02-14T21:00:00+07:00) or "
            "epoch seconds"
        ) from None
    if moment.tzinfo is None:
        raise MomentError(
            f"{text!r} has no offset: add one (+07:00 for WIB, +08:00 WITA, +09:00 WIT, Z for UTC)"
        )
    return moment.astimezone(UTC)


def moment_text(moment: datetime) -> str:
    """A UTC moment as tally writes it: ISO 8601, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# DateTime64's last moment in ClickHouse: any later one means "now" just as well.
LAST = datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC)
FIRST = datetime(1900, 1, 1, tzinfo=UTC)


def sql_moment(moment: datetime) -> str:
    """A moment as a ClickHouse DateTime64(6, 'UTC') parameter, held to the range it can hold."""
    return min(max(moment.astimezone(UTC), FIRST), LAST).strftime("%Y-%m-%d %H:%M:%S.%f")
