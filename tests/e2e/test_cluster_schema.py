"""`tally init --cluster NAME`: the cluster DDL is the schema files' own, rewritten as
docs/production.md says. No Keeper or replica runs here, so what is checked is the text (every rule,
on every statement) and that ClickHouse parses every statement."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from streams.clickhouse.schema import (
    DEDUP_BLOCKS,
    DEDUP_SECONDS,
    cluster_statement,
    create_database,
    schema,
)
from tests.conftest import REPO

CLUSTER = "tally_cluster"


def test_every_statement_runs_on_the_cluster_on_replicated_engines_with_keeper_windows():
    plain = dict(schema())
    clustered = dict(schema(CLUSTER))
    assert plain.keys() == clustered.keys() and len(plain) >= 7
    tables = 0
    for name, statements in clustered.items():
        for before, after in zip(plain[name], statements, strict=True):
            head = next(line for line in after.splitlines() if line.startswith(("CREATE", "ALTER")))
            assert f"ON CLUSTER '{CLUSTER}'" in head, head
            engine = re.search(r"ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?", before)
            if not engine:
                continue
            tables += 1
            table = re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", before).group(1)
            path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}'"
            own = f", {engine.group(2)}" if engine.group(2) else ""
            # own arguments kept
            assert f"ENGINE = Replicated{engine.group(1)}MergeTree({path}{own})" in after
            if "non_replicated_deduplication_window" in before:
                assert "non_replicated" not in after
                assert f"replicated_deduplication_window = {DEDUP_BLOCKS}" in after
                assert f"replicated_deduplication_window_seconds = {DEDUP_SECONDS}" in after
            # Nothing else changed: the columns and keys are the same file's.
            assert re.sub(r"ENGINE = .*", "", after, flags=re.S).replace(
                f" ON CLUSTER '{CLUSTER}'", ""
            ) == re.sub(r"ENGINE = .*", "", before, flags=re.S)
    assert tables >= 14
    assert (
        create_database("tally", CLUSTER)
        == f"CREATE DATABASE IF NOT EXISTS `tally` ON CLUSTER '{CLUSTER}'"
    )


def test_clickhouse_parses_every_cluster_statement(ch):
    for _, statements in schema(CLUSTER):
        for statement in statements:
            formatted = ch.command("SELECT formatQuery({q:String})", parameters={"q": statement})
            assert "ON CLUSTER" in formatted


def test_a_cluster_name_cannot_inject_sql():
    with pytest.raises(ValueError, match="cluster name"):
        cluster_statement("ALTER TABLE t ADD COLUMN x UInt8", "x' ; DROP TABLE t; --")


def test_the_readme_promises_what_the_ddl_does():
    readme = (REPO / "docs" / "production.md").read_text()
    assert "tally init --cluster NAME" in readme
    assert f"{DEDUP_BLOCKS:,} blocks" in readme and f"{DEDUP_SECONDS:,} s" in readme
    assert "/clickhouse/tables/{shard}/{database}/<table>" in readme


def test_the_example_cluster_config_has_one_shard_replicas_keeper_and_the_macros_the_ddl_uses():
    config = ET.parse(REPO / "deploy/clickhouse/cluster/cluster.example.xml").getroot()
    [cluster] = list(config.find("remote_servers"))
    assert len(cluster.findall("shard")) == 1 and len(cluster.findall("shard/replica")) >= 2
    # replicas copy parts themselves
    assert cluster.findtext("shard/internal_replication") == "true"
    assert (
        config.findall("zookeeper/node")
        and config.findtext("macros/shard")
        and config.findtext("macros/replica")
    )
    assert (
        "deploy/clickhouse/cluster/cluster.example.xml"
        in (REPO / "docs" / "production.md").read_text()
    )
