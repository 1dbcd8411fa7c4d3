"""Exactly-once under crashes: workers SIGKILLed at random moments, totals still exact."""

from __future__ import annotations

from benchmarks.crash import run_crash


def test_sigkilled_workers_lose_nothing_and_count_nothing_twice(pipeline, tmp_path):
    report = run_crash(pipeline, tmp_path, tps=20000, kills=5, rate=1000, seed=3)
    assert len(report.kills) == 5
    assert report.exact, "\n".join(report.differences[:20])
    # A restarted worker resumes near its committed offsets: replays add a fraction, not the topic again.
    assert report.events <= report.decision_rows < report.events * 1.5
