"""The embedded ClickHouse, tried as a local attacker would: what it refuses whoever asks (files,
URLs, hosts and programs reached from SQL; writes over GET; several statements in one; bodies that
inflate without end), and that tally's own statements still run."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.parse
import urllib.request

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from streams.embedded.chdb_http import _decode_body
from streams.embedded.schema_files import own_statements
from streams.embedded.statements import DERIVED, Refused, check_statement, words

REFUSED = [
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM `file`('/etc/passwd', 'LineAsString')",
    "select * from FiLe('/etc/passwd')",
    "INSERT INTO FUNCTION file('/tmp/x.csv', 'CSV') SELECT 1",
    "SELECT * FROM url('http://127.0.0.1:8080/api/results', 'JSONEachRow')",
    "SELECT * FROM executable('sh', 'TSV', 'x String', (SELECT 'id'))",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM s3('http://x/y', 'CSV')",
    "CREATE TABLE t (a String) ENGINE = File(CSV)",
    "CREATE TABLE t (a String) ENGINE=URL('http://x', CSV)",
    "SELECT 1 INTO OUTFILE '/tmp/x'",
    "INSERT INTO t FROM INFILE '/etc/passwd' FORMAT LineAsString",
    "SELECT 1; DROP TABLE t",
    "SYSTEM SHUTDOWN",
    "ATTACH TABLE t FROM '/var/lib/x' (a String) ENGINE = Memory",
    "SET insert_allow_materialized_columns = 1",
    "INSERT INTO t (a, e) SETTINGS INSERT_ALLOW_MATERIALIZED_COLUMNS = 1 VALUES ('x', 'lie')",
    # what a page shows is copied by the server's views; nobody writes it or changes a view
    "INSERT INTO tps_pages (page, kind, rank, entry) VALUES ('3171010001099', 'decision', 1, '[]')",
    "INSERT INTO `tps_pages` SELECT * FROM tps_pages",
    "ALTER TABLE tps_pages UPDATE entry = '[]' WHERE 1",
    "ALTER TABLE tps_pages_of_decisions MODIFY QUERY SELECT tps AS page FROM tally_decisions",
    "CREATE MATERIALIZED VIEW forged TO tps_pages AS SELECT 'x' AS page FROM tally_current",
    "CREATE TABLE IF NOT EXISTS tps_pages ENGINE = MergeTree ORDER BY page AS SELECT 'x' AS page",
    "RENAME TABLE forged TO tps_pages",
    "CREATE TABLE b (page String) ENGINE = Buffer(currentDatabase(), 'tps_pages', 1, 1, 1, 1, 1)",
    "ALTER TABLE tally_decisions MODIFY COLUMN trail_entry String MATERIALIZED '[]'",
    "ALTER TABLE tally_current ADD COLUMN IF NOT EXISTS tally_entry String MATERIALIZED '[]'",
    "ALTER TABLE tally_decisions MODIFY COLUMN gateway String, DROP COLUMN trail_entry",
]
ALLOWED = [
    # names inside strings and other names are not calls
    "SELECT 'file(' AS looks_like, url_column FROM t",
    "SELECT count() FROM numbers(10) -- file('/etc/passwd')",
    "INSERT INTO region_totals (a) SELECT a FROM input('a String') WHERE 1",
    "SELECT 1;",
    "SELECT page, entry FROM tps_pages WHERE page IN ['3171010001099']",
    "DROP VIEW IF EXISTS tps_pages_of_tallies",
    "ALTER TABLE tally_current DROP COLUMN tally_entry",
    "ALTER TABLE tally.tally_decisions DROP COLUMN IF EXISTS trail_entry",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_statements_reaching_files_urls_hosts_or_programs_are_refused(sql):
    with pytest.raises(Refused):
        check_statement(sql, "POST")


@pytest.mark.parametrize("sql", ALLOWED)
def test_tallys_own_kinds_of_statement_run(sql):
    check_statement(sql, "POST")


def test_tally_init_still_writes_the_page_table_and_its_views():
    touching = [s for s in own_statements() if DERIVED.intersection(words(s))]
    assert len(touching) >= 9  # the entries, the table, three views, their three copies
    for statement in touching:
        check_statement(statement, "POST")


def test_a_get_only_reads():
    check_statement("SELECT 1", "GET")
    check_statement("WITH 1 AS x SELECT x", "GET")
    for sql in (
        "CREATE TABLE x (a UInt8) ENGINE = Memory",
        "DROP TABLE x",
        "INSERT INTO x VALUES (1)",
        "SET a = 1",
    ):
        with pytest.raises(Refused, match="READONLY"):
            check_statement(sql, "GET")


def test_a_body_that_inflates_past_the_bound_is_refused_not_inflated():
    bomb = gzip.compress(b"\0" * (4 << 20))  # 4 MiB of zeros in ~4 KiB
    assert len(bomb) < 10_000
    with pytest.raises(ValueError, match="MEMORY_LIMIT_EXCEEDED"):
        _decode_body(bomb, "gzip", limit=1 << 20)
    assert _decode_body(gzip.compress(b"abc"), "gzip", limit=3) == b"abc"


def test_the_server_refuses_them_over_http_and_the_table_is_not_made(stack):
    """The same through the embedded server, as any local process (or a web page's GET) would send
    them."""
    base = stack.clickhouse
    client = clickhouse_connect.get_client(dsn=f"{base}/default")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        client.query("SELECT * FROM file('/etc/passwd', 'LineAsString')")
    with pytest.raises(DatabaseError, match="Multi-statements"):
        client.command("SELECT 1; CREATE TABLE refused_x (a UInt8) ENGINE = Memory")
    import base64

    credentials, plain = base.split("://", 1)[1].split("@", 1)
    url = f"http://{plain}/?query=" + urllib.parse.quote(
        "CREATE TABLE refused_y (a UInt8) ENGINE = Memory"
    )
    get = urllib.request.Request(
        url, headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        # the writer's own credentials: a GET still only reads
        urllib.request.urlopen(get, timeout=30)
    assert refused.value.code == 403 and b"READONLY" in refused.value.read()
    assert (
        client.command("SELECT count() FROM system.tables WHERE name IN ('refused_x', 'refused_y')")
        == 0
    )
    assert client.command("SELECT 1") == 1


def test_no_writer_sends_what_a_page_shows_of_a_row_the_server_derives_it(ch):
    """A TPS page shows each decision's trail_entry, derived by the server from the row
    (schemas/clickhouse/012_tps_pages.sql) and copied by a view into tps_pages (014). A writer with
    the writer's credentials tries to send its own, so that the page would say other than the row:
    named in the insert, with the setting that allows it in the statement, and as a request's
    setting."""
    lie = "INSERT INTO tally_decisions (event_id, tps, trail_entry) {} VALUES ('gw:x', '{}', '[]')"
    tps = "3171010001099"
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        ch.command(lie.format("", tps))
    with pytest.raises(DatabaseError, match="SETTING_CONSTRAINT_VIOLATION"):
        ch.command(lie.format("SETTINGS insert_allow_materialized_columns = 1", tps))
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        ch.command(lie.format("", tps), settings={"insert_allow_materialized_columns": 1})
    with pytest.raises(DatabaseError, match="SETTING_CONSTRAINT_VIOLATION"):
        # an insert of other columns, with the setting as the request's
        ch.command(
            f"INSERT INTO tally_decisions (event_id, tps) VALUES ('gw:x', '{tps}')",
            settings={"insert_allow_materialized_columns": 1},
        )
    assert ch.command(f"SELECT count() FROM tally_decisions WHERE tps = '{tps}'") == 0


def test_a_local_process_without_credentials_is_refused_and_the_reader_cannot_write(stack):
    """As any process on this machine would try it: no password, a wrong one, the reader's trying to
    write, a forged device key inserted into the registry. The users file is its owner's alone."""
    import os
    import stat

    from streams.embedded import servers

    users_file = stack.embedded_dir / servers.USERS
    assert stat.S_IMODE(os.stat(users_file).st_mode) == 0o600
    users = servers.clickhouse_users(stack)
    plain = "http://" + stack.clickhouse.split("@", 1)[1]
    for dsn in (
        plain,
        servers.credited(plain, servers.WRITER, "guess"),
        servers.credited(plain, "default", ""),
    ):
        with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED"):
            clickhouse_connect.get_client(dsn=f"{dsn}/default").command("SELECT 1")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{plain}/?query=SELECT%201", timeout=30)
    assert refused.value.code == 401
    reader = clickhouse_connect.get_client(
        dsn=f"{servers.credited(plain, servers.READER, users[servers.READER])}/default"
    )
    assert reader.command("SELECT 1") == 1
    for statement in (
        "CREATE TABLE forged_keys (key_id String) ENGINE = Memory",
        "INSERT INTO system.one SELECT 1",
        "DROP DATABASE IF EXISTS default",
    ):
        with pytest.raises(DatabaseError, match="READONLY"):
            reader.command(statement)
    assert (
        servers.read_only(stack, f"{stack.clickhouse}/x")
        == f"{servers.credited(plain, servers.READER, users[servers.READER])}/x"
    )
    assert (
        servers.read_only(stack, "http://someone:else@db.example:8123/x")
        == "http://someone:else@db.example:8123/x"
    )
    writer = clickhouse_connect.get_client(dsn=f"{stack.clickhouse}/default")
    assert writer.command("SELECT 1") == 1


def test_a_reader_that_stops_reading_holds_no_stream_and_stops_no_stop(tmp_path):
    """An export's reader that reads one piece and stalls: the next stream is answered once the
    stalled one is given up (TALLY_STREAM_STALL_S), the given-up one is cut (no terminating chunk),
    and SIGTERM stops the server within 10 s all the same."""
    import base64
    import os
    import signal
    import socket
    import time

    from streams.embedded import servers
    from streams.settings import Settings
    from tests.conftest import own_clickhouse

    data_dir, port = tmp_path / "own", servers.free_port()
    server = own_clickhouse(data_dir, port, env={**os.environ, "TALLY_STREAM_STALL_S": "2"})
    try:
        deadline = time.monotonic() + 60
        while not servers.port_open("127.0.0.1", port):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        writer = servers.clickhouse_users(Settings(data_dir=data_dir))[servers.WRITER]
        auth = "Basic " + base64.b64encode(f"{servers.WRITER}:{writer}".encode()).decode()
        sql = b"SELECT number, toString(number) FROM numbers(3000000) FORMAT CSV"
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            b"POST /?query_id=stream-stalled HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth.encode()
            + b"\r\nContent-Length: " + str(len(sql)).encode() + b"\r\n\r\n" + sql
        )  # fmt: skip
        assert stalled.recv(1000)  # the stream has begun; then nothing more is read
        started = time.monotonic()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/?query_id=stream-next",
            data=b"SELECT count() FROM numbers(10) FORMAT CSV",
        )
        request.add_header("Authorization", auth)
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.read().strip() == b"10"
        assert time.monotonic() - started < 30  # not for ever: the stalled reader was given up
        stalled.settimeout(30)
        rest = b""
        try:
            while piece := stalled.recv(1 << 20):
                rest += piece
        except ConnectionResetError:
            pass
        assert not rest.endswith(b"0\r\n\r\n")  # cut, never ended as if the file were whole
        server.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        server.wait(timeout=30)
        assert time.monotonic() - stopping <= 10
        stalled.close()
    finally:
        if server.poll() is None:
            server.kill()
