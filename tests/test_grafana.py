"""Every SQL query of the provisioned Grafana dashboard runs against chDB and returns data."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_api import api  # noqa: F401 - a pipeline with simulated data

DASHBOARD = json.loads((Path(__file__).resolve().parent.parent / "deploy/grafana/dashboards/tally.json").read_text())


def test_every_dashboard_query_runs_and_returns_rows(api, ch):  # noqa: F811
    database = ch.database
    queries = [(p["title"], t["rawSql"]) for p in DASHBOARD["panels"] for t in p["targets"]]
    assert len(queries) >= 5
    for title, sql in queries:
        rows = ch.query(sql.replace("tally.", f"`{database}`.")).result_rows
        assert rows, f"panel {title!r} returned nothing"
