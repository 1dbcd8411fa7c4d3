"""Every SQL query of the provisioned Grafana dashboard runs against chDB and returns data."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.conftest import tally
from tests.e2e.test_seats_end_to_end import five_ballots  # noqa: F401 - five ballots through the pipeline

DASHBOARD = json.loads(
    (Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/tally.json").read_text()
)


def test_every_dashboard_query_runs_and_returns_rows(five_ballots, ch, pipeline):  # noqa: F811
    database = ch.database
    queries = [
        (p["title"], t["rawSql"])
        for p in DASHBOARD["panels"]
        for t in p.get("targets", [])
        if "rawSql" in t
    ]
    assert len(queries) >= 5
    for title, sql in queries:
        rows = ch.query(sql.replace("tally.", f"`{database}`.")).result_rows
        assert rows, f"panel {title!r} returned nothing"

    # The seats panel computes Sainte-Lague in SQL; it must agree with `tally seats`.
    panel = next(p for p in DASHBOARD["panels"] if p["title"].startswith("DPR seats"))
    in_sql = dict(
        ch.query(panel["targets"][0]["rawSql"].replace("tally.", f"`{database}`.")).result_rows
    )
    seats = orjson.loads(tally(pipeline, "seats", "--ballot", "DPR", "--json").stdout)
    assert in_sql == {p["party"]: p["seats"] for p in seats["national"] if p["seats"]}


def test_every_pipeline_health_metric_is_one_tally_serves():
    """The Prometheus panels plot only series a worker or the API exposes."""
    import re

    from prometheus_client import generate_latest

    from streams.kafka.metrics import WorkerMetrics
    from streams.read.metrics import ApiMetrics

    worker, api = WorkerMetrics(), ApiMetrics()
    worker.events.labels("applied", "").inc()
    worker.write_seconds.labels("region_totals").observe(0.1)
    worker.lag.labels("0").set(0)
    api.requests.labels("/api/results", "200").inc()
    api.seconds.labels("/api/results").observe(0.1)
    served = {
        line.split("{")[0].split(" ")[0]
        for registry in (worker.registry, api.registry)
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#")
    }
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", []) if "expr" in t]
    assert len(exprs) >= 8
    for expr in exprs:
        for name in re.findall(r"\b(tally_[a-z_]+|process_[a-z_]+)", expr):
            assert name in served, f"{name} in {expr!r} is not a metric tally serves"
