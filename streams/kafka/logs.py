"""The worker's logs: one record a line, as text or JSON (`tally worker --log-format json`), and a
dependency that goes away said once, not forty times a second.

While the broker is away, aiokafka and faust log every failed connect, fetch and metadata update:
~40 ERROR lines a second, measured. `QuietDependencies` lets the first of each kind through, then
one reminder at most every REMIND_S saying how many it held back. A traceback is part of its
record (in JSON, the `exception` field), never spread over lines of its own: mode's redirect of
stdout and stderr into the log, which turned each character of a traceback into a record, is off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from streams.clickhouse.sink import REMIND_S  # one pace of reminders, the sink's and the libraries'

NOISY = ("aiokafka", "kafka", "faust", "mode", "urllib3")  # the libraries that log every retry
# faust's own, kept for readers' habits
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, pid, message; a traceback in
    `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry).decode()


@dataclass
class _Kind:
    said_at: float  # when a record of this kind was last let through
    seen_at: float  # when one was last seen
    held: int = 0  # held back since said_at


class QuietDependencies(logging.Filter):
    """At most one WARNING-or-worse record of each kind (logger and message template) of the noisy
    libraries per REMIND_S; the next one let through says how many were held back. A kind quiet for
    REMIND_S starts afresh (a new outage is said at once)."""

    def __init__(
        self, remind_s: float = REMIND_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.remind_s = remind_s
        self.clock = clock
        self.kinds: dict[tuple[str, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(NOISY):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        kind = self.kinds.get(key)
        if kind is None or now - kind.seen_at > self.remind_s:
            self.kinds[key] = _Kind(now, now)
            return True
        kind.seen_at = now
        if now - kind.said_at < self.remind_s:
            kind.held += 1
            return False
        record.msg = (
            f"{record.msg} (again; {kind.held} more like it held back over "
            f"{now - kind.said_at:.0f} s)"
        )
        kind.said_at, kind.held = now, 0
        return True


def logging_config(level: str, log_format: str) -> dict:
    """The dictConfig the worker hands to mode (faust's runner), which otherwise sets up its own."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {log_format!r}")
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tally": formatter},
        "filters": {"quiet": {"()": QuietDependencies}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "tally",
                "filters": ["quiet"],
                "level": level.upper(),
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
