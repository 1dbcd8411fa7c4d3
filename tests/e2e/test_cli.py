"""The CLI contract around the pipeline: validate, produce, init, up/down and their errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import orjson

from streams.ops.demo import wait_caught_up
from streams.settings import Settings
from tests.conftest import REPO, tally
from tests.factories import key_record, signed, tally_dict


def test_validate_writes_one_decision_per_line_and_exits_0(pipeline, tmp_path):
    registry = tmp_path / "r.jsonl"
    registry.write_bytes(
        b"\n".join(
            orjson.dumps(r)
            for r in [
                {"type": "tps", "code": "3171010001001", "dpt": 281},
                {
                    "type": "contest",
                    "ballot": "PPWP",
                    "dapil": "PPWP",
                    "regions": ["ID"],
                    "choices": [{"code": "01"}, {"code": "02"}, {"code": "03"}],
                },
                key_record("3171010001001"),
            ]
        )
    )
    bad = tally_dict(event_id="gw:2")
    bad["votes"]["01"] = 620  # misread by the device, which signs what it read
    events = [
        signed(tally_dict()),
        signed(bad),
        None,
        signed(tally_dict(tps="3171010001002")),
        tally_dict(event_id="gw:5"),
    ]
    lines = b"\n".join(orjson.dumps(e) if e else b"{broken" for e in events)
    out = tally(pipeline, "validate", "--registry", str(registry), stdin=lines + b"\n")
    decisions = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [d["decision"] for d in decisions] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert decisions[1]["event_id"] == "gw:2" and decisions[1]["reasons"] == ["VOTES_MISMATCH"]
    assert decisions[2] == {
        "event_id": None,
        "decision": "rejected",
        "reasons": ["MALFORMED"],
        "flags": [],
        "findings": decisions[2]["findings"],
    }
    assert decisions[3]["reasons"] == ["UNKNOWN_KEY", "UNKNOWN_TPS"]  # every code that applies
    assert decisions[4]["reasons"] == ["UNSIGNED"]


def test_produce_publishes_lines_as_given_and_the_worker_rejects_the_raw_ones(
    pipeline, workers, ch
):
    workers.start()
    lines = [
        orjson.dumps(tally_dict(event_id=f"gw:{i}", tps=f"31710100010{i:02d}")) for i in range(3)
    ] + [b"not json at all"]
    out = tally(pipeline, "produce", "-", stdin=b"\n".join(lines) + b"\n")
    assert b"produced 4 events" in out.stdout
    wait_caught_up(pipeline, 4, timeout_s=120)
    rows = ch.query("SELECT reasons, payload FROM tally_rejections ORDER BY payload").result_rows
    # No registry loaded: every TPS is unknown; the raw line is kept as it came.
    assert (["MALFORMED"], "not json at all") in rows and len(rows) == 4


def test_init_is_idempotent(pipeline):
    first = tally(pipeline, "init")
    again = tally(pipeline, "init")
    assert b"none (they exist)" in again.stdout and b"002_tallies.sql" in first.stdout


WIDER = ("region_totals", "tally_current", "tally_decisions", "log_leaves")


def merge_bases(ch) -> dict[str, str]:  # noqa: ANN001
    return dict(
        ch.query(
            "SELECT name, extract(create_table_query, 'merge_selector_base = (\\d+)') "
            "FROM system.tables WHERE database = currentDatabase() AND name IN "
            "{t:Array(String)}",
            parameters={"t": [*WIDER, "tps_pages"]},
        ).result_rows
    )


def test_init_merges_the_most_written_tables_wider_and_not_the_page_table(pipeline, ch):
    assert merge_bases(ch) == {**dict.fromkeys(WIDER, "20"), "tps_pages": ""}
    for table in WIDER:  # a database made before: ClickHouse's own merges
        ch.command(f"ALTER TABLE {table} RESET SETTING merge_selector_base")
    assert set(merge_bases(ch).values()) == {""}
    tally(pipeline, "init")
    assert merge_bases(ch) == {**dict.fromkeys(WIDER, "20"), "tps_pages": ""}


def test_up_down_and_a_clear_error_for_a_taken_port(tmp_path):
    env_dir = tmp_path / "dd"

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "streams", *args, "--data-dir", str(env_dir)]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)

    up = run("up")
    assert (
        up.returncode == 0
        and "kafka      127.0.0.1:" in up.stdout
        and "clickhouse http://127.0.0.1:" in up.stdout
    )
    assert run("up").stdout == up.stdout  # a second `up` finds the running servers
    down = run("down")
    assert "broker: stopped" in down.stdout and "clickhouse: stopped" in down.stdout
    assert "not running" in run("down").stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run("broker", "--port", str(port))
    assert busy.returncode == 2 and f"port 127.0.0.1:{port} is taken" in busy.stderr


def test_settings_come_from_env_then_flags():
    s = Settings.from_env(
        {"TALLY_KAFKA": "k:9092", "TALLY_DATA_DIR": "/x", "TALLY_PARTITIONS": "3"}
    )
    assert (s.kafka, str(s.data_dir), s.partitions, s.clickhouse) == ("k:9092", "/x", 3, None)
    assert s.override(kafka=None, clickhouse="http://h:8123/db").clickhouse == "http://h:8123/db"
    assert s.override(kafka=None).kafka == "k:9092"


def test_demo_counts_five_ballots_verifies_and_prints_the_dpr_seats(tmp_path):
    """`make demo`'s job, small and without the page: its own embedded servers in a fresh data
    dir."""
    import os

    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    after: dict[str, subprocess.CompletedProcess] = {}
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams",
                "demo",
                "--tps",
                "400",
                "--no-serve",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            timeout=300,
            cwd=REPO,
            env=env,
        )
        for command in (
            ["results", "--json"],
            ["seats", "--ballot", "DPR", "--json"],
            ["changes", "--json"],
            ["status"],
        ):
            after[command[0]] = subprocess.run(
                [sys.executable, "-m", "streams", *command, "--data-dir", str(data_dir)],
                capture_output=True,
                timeout=120,
                cwd=REPO,
                env=env,
            )
    finally:
        subprocess.run(
            [sys.executable, "-m", "streams", "down", "--data-dir", str(data_dir)],
            capture_output=True,
            timeout=60,
        )
    out = result.stdout.decode()
    assert result.returncode == 0, out[-3000:] + result.stderr.decode()[-3000:]
    assert "verify: totals are exact at every level" in out
    assert "DPR seats:" in out and "threshold 4%" in out
    # the night's log, one TPS's proof checked
    assert "log: included:" in out and "schemas/log/verify.py" in out
    # The demo leaves a working setup: the same data dir's commands read its night with no setting.
    for name, done in after.items():
        assert done.returncode == 0, (
            name,
            done.stdout.decode()[-2000:],
            done.stderr.decode()[-2000:],
        )
    national = orjson.loads(after["results"].stdout)["regions"][0]
    assert (
        national["tps_total"] == 400
        and national["tps_reported"] > 350
        and sum(national["votes"].values()) > 0
    )
    assert (
        orjson.loads(after["seats"].stdout)["dapils"]
        and orjson.loads(after["changes"].stdout)["changes"]
    )
    status = after["status"].stdout.decode()
    assert "unreachable" not in status and "partition" in status.lower(), status


REFUSED = [
    (["results", "--ballot", "XYZ"], "/api/results?ballot=XYZ"),
    (["results", "--ballot", "dpr"], "/api/results?ballot=dpr"),
    (["results", "--region", "77"], "/api/results?region=77"),
    (["results", "--level", "provinsi"], "/api/results?level=provinsi"),
    (["results", "--ballot", "DPR", "--dapil", "9999-99"], "/api/results?ballot=DPR&dapil=9999-99"),
    (["seats", "--ballot", "PPWP"], "/api/seats?ballot=PPWP"),
    (["changes", "--region", "77"], "/api/changes?region=77"),
    (
        ["export", "--out", "/tmp/never", "--format", "xlsx"],
        "/api/export/PPWP/province/MANIFEST.json?format=xlsx",
    ),
]


def test_the_cli_refuses_what_the_api_refuses_in_the_same_words_with_exit_2(pipeline):
    """Each bad input of the issue, given to the command line and to the API: exit 2 and the API's
    message (a 4xx there), never an empty table, a traceback or a spinner."""
    from tests.conftest import api_server, get

    with api_server(pipeline) as port:
        for args, path in REFUSED:
            status, body = get(port, path)
            result = tally(pipeline, *args, check=False)
            err = result.stderr.decode()
            said = body["error"]
            assert 400 <= status < 500 and result.returncode == 2, (
                args,
                status,
                result.returncode,
                err,
            )
            assert said in err and "Traceback" not in err, (args, body, err)
            assert not result.stdout.strip(), (args, result.stdout)


def test_a_moment_in_the_future_says_so_and_answers_the_totals_now(pipeline):
    result = tally(pipeline, "results", "--as-of", "9999999999", "--json")
    assert (
        b"in the future: these are the totals now" in result.stderr
        and "regions" in orjson.loads(result.stdout)
    )


def test_version():
    result = subprocess.run(
        [sys.executable, "-m", "streams", "--version"], capture_output=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0 and result.stdout.decode().startswith("tally ")
