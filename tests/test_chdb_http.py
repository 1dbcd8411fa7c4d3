"""The embedded ClickHouse HTTP layer, driven by clickhouse-connect's ordinary HTTP client."""

from __future__ import annotations

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError


@pytest.fixture
def client(stack):
    admin = clickhouse_connect.get_client(dsn=f"{stack.clickhouse}/default")
    admin.command("CREATE DATABASE IF NOT EXISTS http_layer")
    c = clickhouse_connect.get_client(dsn=f"{stack.clickhouse}/http_layer")
    c.command("DROP TABLE IF EXISTS t")
    c.command(
        "CREATE TABLE t (a UInt64, s String, m Map(String, UInt32)) ENGINE = MergeTree ORDER BY a "
        "SETTINGS non_replicated_deduplication_window = 100"
    )
    return c


def test_compressed_multi_block_insert_arrives_whole(client):
    rows = [(i, f"s{i}", {"01": i % 7}) for i in range(300_000)]
    client.insert("t", rows, column_names=["a", "s", "m"])  # lz4, several blocks
    assert client.query("SELECT count(), sum(a), sum(m['01']) FROM t").result_rows == [
        (300_000, sum(range(300_000)), sum(i % 7 for i in range(300_000)))
    ]


def test_insert_deduplication_token_drops_a_repeat(client):
    rows = [(i, "x", {}) for i in range(10)]
    for _ in range(2):
        client.insert("t", rows, column_names=["a", "s", "m"], settings={"insert_deduplication_token": "batch-1"})
    client.insert("t", rows, column_names=["a", "s", "m"], settings={"insert_deduplication_token": "batch-2"})
    assert client.command("SELECT count() FROM t") == 20


def test_settings_last_one_request_only(client):
    assert client.query("SELECT getSetting('max_threads')", settings={"max_threads": 1}).result_rows == [(1,)]
    assert client.query("SELECT getSetting('max_threads')").result_rows != [(1,)]


def test_errors_arrive_as_clickhouse_errors_with_their_code(client):
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE|60"):
        client.query("SELECT * FROM no_such_table")
    assert client.command("SELECT 1") == 1  # the server lives on


def test_query_parameters_and_databases(client):
    client.insert("t", [(7, "seven", {})], column_names=["a", "s", "m"])
    assert client.query("SELECT s FROM t WHERE a = {a:UInt64}", parameters={"a": 7}).result_rows == [("seven",)]
