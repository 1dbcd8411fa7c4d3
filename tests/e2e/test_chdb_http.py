"""The embedded ClickHouse HTTP layer, driven by clickhouse-connect's ordinary HTTP client."""

from __future__ import annotations

import threading
import time

import chdb
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
        client.insert(
            "t",
            rows,
            column_names=["a", "s", "m"],
            settings={"insert_deduplication_token": "batch-1"},
        )
    client.insert(
        "t", rows, column_names=["a", "s", "m"], settings={"insert_deduplication_token": "batch-2"}
    )
    assert client.command("SELECT count() FROM t") == 20


def test_settings_last_one_request_only(client):
    assert client.query(
        "SELECT getSetting('max_threads')", settings={"max_threads": 1}
    ).result_rows == [(1,)]
    assert client.query("SELECT getSetting('max_threads')").result_rows != [(1,)]


def test_a_refused_setting_leaves_no_setting_behind(client):
    # Each handle keeps the last request's settings and SETs only what differs: a request whose
    # settings are refused must not leave the others it asked for on the handle.
    default = client.query("SELECT getSetting('max_block_size')").result_rows
    for _ in range(6):  # more requests than handles
        with pytest.raises(DatabaseError, match="UNKNOWN_SETTING|115"):
            client.query("SELECT 1", settings={"max_block_size": 7, "no_such_setting": 1})
        assert client.query("SELECT getSetting('max_block_size')").result_rows == default
        assert client.query(
            "SELECT getSetting('max_block_size')", settings={"max_block_size": 9}
        ).result_rows == [(9,)]
    assert client.query("SELECT getSetting('max_block_size')").result_rows == default


def test_errors_arrive_as_clickhouse_errors_with_their_code(client):
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE|60"):
        client.query("SELECT * FROM no_such_table")
    assert client.command("SELECT 1") == 1  # the server lives on


def test_query_parameters_and_databases(client):
    client.insert("t", [(7, "seven", {})], column_names=["a", "s", "m"])
    assert client.query(
        "SELECT s FROM t WHERE a = {a:UInt64}", parameters={"a": 7}
    ).result_rows == [("seven",)]


def test_a_parameter_is_text_parsed_by_its_type(client):
    # Unquoted, '0000000002' became the number 2 and then the string '2': a cursor skipped a change.
    assert client.query(
        "SELECT {s:String}, {n:UInt32}", parameters={"s": "0000000002", "n": 7}
    ).result_rows == [("0000000002", 7)]


def test_a_stream_query_arrives_whole_in_chunks_beside_other_statements(client):
    client.insert("t", [(i, f"s{i}", {}) for i in range(50_000)], column_names=["a", "s", "m"])
    source = client.raw_stream(
        "SELECT a, s FROM t ORDER BY a", settings={"query_id": "stream-test"}, fmt="CSV"
    )
    first = source.read(1024)
    # The stream holds a handle of its own; ordinary statements still run on the pool meanwhile.
    assert client.command("SELECT count() FROM t") == 50_000
    rest = first + source.read()
    lines = rest.decode().splitlines()
    assert len(lines) == 50_000 and lines[0] == '0,"s0"' and lines[-1] == '49999,"s49999"'
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE|Unknown table"):
        client.raw_stream(
            "SELECT * FROM missing", settings={"query_id": "stream-bad"}, fmt="CSV"
        ).read()


def test_a_long_stream_is_one_file_in_any_format(client, tmp_path):
    # Millions of rows come out of chDB in many chunks: still one header, one Parquet file (several
    # files end to end would read as the last one alone).
    many = "SELECT number AS a, toString(number) AS s FROM numbers(3000000)"
    for fmt in ("CSVWithNames", "Parquet"):
        path = tmp_path / f"out.{fmt}"
        source = client.raw_stream(many, settings={"query_id": f"stream-{fmt}"}, fmt=fmt)
        with path.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        counted = (
            chdb.query(f"SELECT count(), max(a) FROM file('{path}', '{fmt}')", "CSV")
            .bytes()
            .decode()
            .strip()
        )
        assert counted == "3000000,2999999", fmt


@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
def test_an_error_block_after_the_first_chunk_raises_and_none_of_it_is_data(piece):
    """ClickHouse 25.11+'s tagged error block, as the embedded server writes it, read in pieces of
    any size (a marker split between two pieces included): the reader raises with the server's
    message and yields only the bytes before the block."""
    import io

    from streams.embedded.chdb_http import exception_block
    from streams.read.export import ExportFailed, whole

    data = b"".join(b"%d,row\n" % i for i in range(5000))
    body = io.BytesIO(
        data
        + exception_block(
            ValueError("Code: 241. DB::Exception: memory. (MEMORY_LIMIT_EXCEEDED)"), "t4g"
        )
    )
    taken: list[bytes] = []
    with pytest.raises(ExportFailed, match="MEMORY_LIMIT_EXCEEDED") as failed:
        for chunk in whole(lambda n: body.read(min(n, piece)), "t4g"):
            taken.append(chunk)
    assert data.startswith(b"".join(taken)) and b"Exception" not in b"".join(taken)
    assert "__exception__" not in str(failed.value) and "t4g" not in str(failed.value)
    whole_body = io.BytesIO(data)
    # a whole body is all data
    assert b"".join(whole(lambda n: whole_body.read(min(n, piece)), "t4g")) == data


def _timed(run, spans: dict, name: str):
    def go() -> None:
        started = time.monotonic()
        run()
        spans[name] = (started, time.monotonic())

    return threading.Thread(target=go)


def test_statements_run_side_by_side_but_a_moment_read_never_beside_an_insert(stack, client):
    """Two slow reads overlap (the pool), a slow insert and a plain read overlap, and a moment read
    that comes while an insert runs waits for it: asked for later, its moment gives back what it
    saw."""
    other = clickhouse_connect.get_client(dsn=f"{stack.clickhouse}/http_layer")
    slow_read = "SELECT sleepEachRow(0.1) FROM numbers(10) FORMAT Null"  # 1 s in the server
    slow_insert = (
        "INSERT INTO t (a, s, m) SELECT number, 'x', map() FROM numbers(10) WHERE "
        "sleepEachRow(0.1) = 0"
    )
    spans: dict[str, tuple[float, float]] = {}
    pair = [
        _timed(lambda: client.command(slow_read), spans, "r1"),
        _timed(lambda: other.command(slow_read), spans, "r2"),
    ]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join()
    # they overlapped
    assert max(spans["r1"][0], spans["r2"][0]) < min(spans["r1"][1], spans["r2"][1])

    insert = _timed(lambda: client.command(slow_insert), spans, "insert")
    insert.start()
    time.sleep(0.3)
    # A plain read does not wait: it sees none of the rows, so it ran before the insert ended (a
    # bound on its time would say the same and fail on a slow hour).
    assert other.command("SELECT count() FROM t") == 0
    moment = other.command("SELECT count() FROM t", settings={"query_id": "moment-test"})
    answered = time.monotonic()
    insert.join()
    # it waited for the insert, and saw it
    assert moment == 10 and answered >= spans["insert"][1] - 0.05
