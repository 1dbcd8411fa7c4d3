"""Exactly-once under crashes: workers SIGKILLed at random moments, totals still exact."""

from __future__ import annotations

from benchmarks.crash import run_crash


def test_sigkilled_workers_lose_nothing_and_count_nothing_twice(pipeline, tmp_path):
    report = run_crash(pipeline, tmp_path, tps=20000, kills=5, rate=300, seed=3)
    assert len(report.kills) == 5
    assert report.exact, "\n".join(report.differences[:20])
    # The audit trail says what happened first, not what a replay after a kill saw.
    assert report.decisions == {
        "applied": report.events - report.expected_duplicates,
        "duplicate": report.expected_duplicates,
    }
    # A restarted worker resumes near its committed offsets: it replays a small part of what
    # restarting from the beginning of the topic would replay.
    assert 0 <= report.replayed < 0.5 * report.replay_from_zero(rate=300)
    # The transparency log, appended while workers died and replayed: every applied tally once, no
    # gap, and a full recount adds up to the signed checkpoint and the results.
    assert report.log_leaves == report.log_unique == report.decisions["applied"]
    assert "leaves add up" in report.log_audit
