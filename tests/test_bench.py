"""`tally bench` works end to end at small scale (its figures are measured in benchmarks/, not asserted here)."""

from __future__ import annotations

import orjson

from tests.conftest import tally


def test_bench_reports_every_figure_and_verifies(pipeline, tmp_path):
    report_path = tmp_path / "bench.json"
    tally(pipeline, "bench", "--tps", "400", "--rate", "200", "--latency-seconds", "2", "--json", str(report_path))
    report = orjson.loads(report_path.read_bytes())
    assert report["exact"] is True and report["differences"] == []
    assert report["events"] == report["backlog_events"] + report["latency_events"]
    for figure in ("produce_events_per_s", "baseline_events_per_s", "events_per_s", "ratio_to_baseline", "catch_up_s"):
        assert report[figure] > 0, figure
    assert 0 <= report["latency_p50_ms"] <= report["latency_p99_ms"]
    assert len(report["worker_peak_rss_mib"]) == 1 and report["worker_peak_rss_mib"][0] > 10
