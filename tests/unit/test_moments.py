"""Moments and cursors a reader names: what is accepted, what is refused and why, and round
trips."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.moments import MomentError, moment_text, parse_moment, sql_moment
from streams.read.changes import Cursor


def test_offsets_and_epoch_seconds_name_the_same_moment():
    wib = parse_moment("2024-02-14T21:00:00+07:00")
    assert (
        wib
        == parse_moment("2024-02-14T14:00:00Z")
        == parse_moment("1707919200")
        == datetime(2024, 2, 14, 14, tzinfo=UTC)
    )
    assert parse_moment("1707919200.25").microsecond == 250000
    assert moment_text(wib) == "2024-02-14T14:00:00.000000Z"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2024-02-14T21:00:00", "no offset"),  # WIB, WITA or WIT? never guessed
        ("yesterday", "not a moment"),
        ("", "not a moment"),
        ("99999999999999", "not a moment"),  # too many digits for epoch seconds
    ],
)
def test_a_moment_without_an_offset_or_malformed_is_refused_with_the_reason(text, says):
    with pytest.raises(MomentError, match=says):
        parse_moment(text)


def test_far_moments_are_held_to_what_clickhouse_can_hold():
    assert sql_moment(datetime(9999, 1, 1, tzinfo=UTC)).startswith("2299-12-31")
    assert sql_moment(datetime(1, 1, 1, tzinfo=UTC)).startswith("1900-01-01")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)),
       st.from_regex(r"[1-9][0-9]{12}", fullmatch=True), st.integers(1, 2**32 - 1))  # fmt: skip
def test_a_cursor_names_its_change_exactly(moment, tps, revision):
    cursor = Cursor(moment, tps, revision)
    again = Cursor.parse(str(cursor))
    assert (again.moment, again.tps, again.revision) == (moment, tps, revision)


@pytest.mark.parametrize(
    "text", ["12/1101012001001", "x/1101012001001/1", "1/110101200100/1", "1/1101012001001/x"]
)
def test_a_malformed_cursor_is_refused(text):
    with pytest.raises(MomentError, match="not a cursor|not a moment"):
        Cursor.parse(text)
