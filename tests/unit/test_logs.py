"""The worker's logs: a dependency that is down is said once and then at most every 30 s,
with how much was held back; JSON records are one line each, a traceback inside its record."""

from __future__ import annotations

import logging

import orjson

from streams.kafka.logs import JsonFormatter, QuietDependencies, logging_config


def record(name: str, msg: str, level: int = logging.ERROR, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_forty_errors_a_second_become_one_line_and_a_reminder_every_30_s():
    now = [0.0]
    quiet = QuietDependencies(remind_s=30.0, clock=lambda: now[0])
    said = []
    for tick in range(60 * 40):  # a minute of ~40 failed fetches a second
        now[0] = tick / 40
        r = record(
            "aiokafka.consumer.fetcher",
            "Failed fetch messages from %s: %s",
            logging.ERROR,
            111,
            "closed",
        )
        if quiet.filter(r):
            said.append((now[0], r.getMessage()))
    assert [t for t, _ in said] == [0.0, 30.0]
    assert "1199 more like it held back over 30 s" in said[1][1]
    assert said[0][1] == "Failed fetch messages from 111: closed"


def test_other_kinds_and_our_own_records_pass():
    quiet = QuietDependencies(clock=lambda: 0.0)
    assert quiet.filter(record("aiokafka.conn", "Unable connect to node %s"))
    # another kind
    assert quiet.filter(record("aiokafka.cluster", "Unable to update metadata from %s"))
    assert not quiet.filter(record("aiokafka.conn", "Unable connect to node %s"))
    # ours are never held
    assert all(quiet.filter(record("tally.sink", "write failed")) for _ in range(5))
    assert all(quiet.filter(record("aiokafka.conn", "connected", logging.INFO)) for _ in range(5))


def test_a_new_outage_is_said_at_once():
    now = [0.0]
    quiet = QuietDependencies(remind_s=30.0, clock=lambda: now[0])
    assert quiet.filter(record("aiokafka", "down"))
    now[0] = 10.0
    assert not quiet.filter(record("aiokafka", "down"))
    now[0] = 100.0  # quiet for longer than 30 s: this is a new outage
    assert quiet.filter(record("aiokafka", "down"))


def test_json_records_are_one_line_with_the_traceback_inside():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        r = logging.LogRecord(
            "tally.worker", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    line = JsonFormatter().format(r)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert (
        entry["message"] == "failed x"
        and entry["level"] == "ERROR"
        and entry["logger"] == "tally.worker"
    )
    assert "ValueError: bad" in entry["exception"] and entry["time"].endswith("Z")


def test_the_log_format_is_checked():
    assert logging_config("info", "json")["formatters"]["tally"]["()"] is JsonFormatter
    try:
        logging_config("info", "xml")
    except ValueError as exc:
        assert "text or json" in str(exc)
    else:
        raise AssertionError("xml was accepted")
