"""Settings that enter from the environment: a bad value is a clear error, not a surprise later."""

from __future__ import annotations

import pytest

from streams.settings import Settings


def test_the_worker_nice_is_an_increment_0_to_19_by_default_0():
    assert Settings.from_env({}).worker_nice == 0
    assert Settings.from_env({"TALLY_WORKER_NICE": "7"}).worker_nice == 7
    assert (
        Settings.from_env(Settings.from_env({"TALLY_WORKER_NICE": "19"}).as_env()).worker_nice == 19
    )
    for bad in ("-5", "20", "high"):
        with pytest.raises(ValueError, match="TALLY_WORKER_NICE"):
            Settings.from_env({"TALLY_WORKER_NICE": bad})
