"""The producer's schedule (`produce.Pacer`): pure, no broker."""

from __future__ import annotations

from streams.kafka.produce import Pacer


def test_the_rate_spaces_sends_evenly_when_the_sender_keeps_up():
    pacer = Pacer(rate=100)
    dues = [pacer.due(elapsed=i * 0.01, value=b"") for i in range(5)]
    assert dues == [0.0, 0.01, 0.02, 0.03, 0.04]


def test_after_a_stall_the_rate_resumes_without_a_burst():
    pacer = Pacer(rate=2000, burst_s=0.05)
    pacer.due(0.0, b"")  # the first send; then the values stall for 10 s (a slow reader)
    dues = [pacer.due(10.0, b"") for _ in range(1000)]
    # Credit is capped at 50 ms of sending (100 events); the rest go out at 2,000/s from there.
    assert sum(due <= 10.0 + 1e-6 for due in dues) == 101
    assert abs(dues[-1] - (10.0 - 0.05 + 999 / 2000)) < 1e-6


def test_pace_is_an_absolute_clock_and_the_rate_still_bounds_it():
    pacer = Pacer(rate=None, pace=lambda value: float(value.decode()))
    assert [pacer.due(5.0, b"3"), pacer.due(5.0, b"7")] == [5.0, 7.0]
    both = Pacer(rate=1, pace=lambda value: 0.0)
    assert [both.due(0.0, b""), both.due(0.0, b"")] == [0.0, 1.0]
