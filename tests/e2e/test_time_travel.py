"""Results as of any moment, the change feed and open data, on a real night: a real broker,
real workers (one SIGKILLed and replaced mid-night), real chDB, the real API and CLI."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
import time
import urllib.request

import chdb
import orjson

from streams.core.seats import party_totals
from streams.ops.demo import wait_caught_up
from streams.read.export import FORMATS
from tests.conftest import REPO, api_server, env_of, get, tally

# Views a dashboard polls, at every kind of level: written (national, province), summed from the
# TPS's changes (district, TPS), a dapil and the seats.
VIEWS = [
    "/api/results?ballot=PPWP&level=national",
    "/api/results?ballot=PPWP&level=province",
    "/api/results?ballot=DPR&region=31",
    "/api/results?ballot=PPWP&level=district&region={regency}",
    "/api/results?ballot=DPR&level=tps&region=11",
    "/api/seats?ballot=DPR",
]


def raw(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        return response.read()


def night(pipeline, ch, workers, tmp_path, port) -> tuple[list[tuple[str, dict]], int]:
    """Simulate at a bounded rate while reading the views; SIGKILL the first worker a third of the
    way in and start another, which replays from the last commit. Returns the snapshots and the
    events."""
    out = tmp_path / "sim"
    first = workers.start()
    producer = subprocess.Popen(
        [sys.executable, "-m", "streams", "simulate", "--tps", "400", "--seed", "16",
         "--ballots", "PPWP,DPR",
         "--corrections", "0.15", "--duplicates", "0.05", "--invalid", "0.02", "--rate", "120",
         "--out", str(out)],
        env=env_of(pipeline), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    # The registry is loaded before the first event is sent, and it is not kept in time: wait until
    # its load is complete (registry_loads is written last), or a snapshot could hold half a
    # registry.
    while not ch.command("SELECT count() FROM registry_loads"):
        assert time.monotonic() < deadline and producer.poll() is None, "no registry"
        time.sleep(0.1)
    regency = get(port, VIEWS[2])[1]["regions"][0]["code"]  # Jakarta's first regency
    VIEWS[3] = VIEWS[3].format(regency=regency)
    snapshots: list[tuple[str, dict]] = []
    killed, still = False, 0
    deadline = time.monotonic() + 240
    while still < 3:  # until the producer is done and three rounds in a row saw nothing move
        assert time.monotonic() < deadline, "the night did not settle"
        before = [body for _, body in snapshots[-len(VIEWS) :]]
        for path in VIEWS:
            status, body = get(port, path)
            assert status == 200, body
            snapshots.append((path, body))
        counted = snapshots[-len(VIEWS)][1]["regions"][0]["tps_reported"]
        if not killed and counted > 100:
            first.kill()  # mid-night, no goodbye: the next worker replays what it had not committed
            workers.start()
            killed = True
        moved = [{**b, "as_of": None} for b in before] != [
            {**b, "as_of": None} for _, b in snapshots[-len(VIEWS) :]
        ]
        still = 0 if moved or producer.poll() is None else still + 1
        time.sleep(0.3)
    assert producer.returncode == 0 and killed
    events = len((out / "events.jsonl").read_bytes().splitlines())
    wait_caught_up(pipeline, events, timeout_s=180)
    return snapshots, events


def test_a_night_comes_back_moment_by_moment_and_every_change_is_explained(
    pipeline, ch, workers, tmp_path
):
    with api_server(pipeline) as port:
        snapshots, _ = night(pipeline, ch, workers, tmp_path, port)
        moments = sorted({body["as_of"] for _, body in snapshots})
        assert len(moments) > 10
        growing = [b["regions"][0]["tps_reported"] for p, b in snapshots if p == VIEWS[0]]
        assert growing[0] < growing[-1], "the snapshots were not taken during ingestion"

        # 1. Every live snapshot, asked for by its moment after the night (and after the crash and
        # replay), comes back exactly.
        for path, body in snapshots:
            status, again = get(port, f"{path}&as_of={body['as_of']}")
            assert status == 200 and again == body, path
        # ... and the CLI says the same.
        path, body = next((p, b) for p, b in reversed(snapshots) if p == VIEWS[1])
        cli = orjson.loads(
            tally(
                pipeline, "results", "--level", "province", "--as-of", body["as_of"], "--json"
            ).stdout
        )
        assert [r["votes"] for r in cli["regions"]] == [r["votes"] for r in body["regions"]]
        seats = next(b for p, b in reversed(snapshots) if p == VIEWS[-1])
        cli = orjson.loads(
            tally(pipeline, "seats", "--ballot", "DPR", "--as-of", seats["as_of"], "--json").stdout
        )
        assert cli == seats

        # 2. Before the first count: zeros; in the future: the current totals; malformed: a clear
        #    error.
        _, before = get(port, "/api/results?ballot=PPWP&level=province&as_of=1000000000")
        assert all(r["tps_reported"] == 0 and not r["votes"] for r in before["regions"])
        # the API caches
        now = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)
        _, future = get(
            port, "/api/results?ballot=PPWP&level=province&as_of=2099-01-01T00:00:00%2B07:00"
        )
        assert [(r["tps_reported"], r["votes"]) for r in future["regions"]] == [
            (r["tps_reported"], r["votes"]) for r in now["regions"]
        ]
        status, error = get(port, "/api/results?ballot=PPWP&as_of=2024-02-14T21:00:00")
        assert status == 400 and "offset" in error["error"]
        refused = tally(pipeline, "results", "--as-of", "yesterday", check=False)
        assert refused.returncode == 2 and "--as-of" in refused.stderr.decode()

        # 3. The feed: results as of A plus every delta from A to B are the results as of B.
        a, b = moments[len(moments) // 3], moments[-2]
        for ballot, region in (("PPWP", None), ("DPR", "31")):
            scope = f"&region={region}" if region else ""
            level = "province" if region else "national"
            deltas: dict[str, int] = {}
            counted = invalid = voters = 0
            cursor, pages = a, 0
            while True:
                status, page = get(
                    port, f"/api/changes?ballot={ballot}{scope}&since={cursor}&until={b}&limit=7"
                )
                assert status == 200, page
                for change in page["changes"]:
                    assert a < change["decided_at"] <= b
                    for choice, n in (change.get("parties") or change["votes"]).items():
                        deltas[choice] = deltas.get(choice, 0) + n
                    counted += change["tps_reported"]
                    invalid += change["invalid"]
                    voters += change["voters"]
                    if ballot == "DPR":
                        assert change["parties"] == {
                            p: n for p, n in party_totals(change["votes"]).items() if n
                        }
                if not page["changes"]:
                    break
                cursor, pages = page["next"], pages + 1
            assert pages > 1  # the cursor carried across pages
            start = get(port, f"/api/results?ballot={ballot}&level={level}{scope}&as_of={a}")[1][
                "regions"
            ][0]
            end = get(port, f"/api/results?ballot={ballot}&level={level}{scope}&as_of={b}")[1][
                "regions"
            ][0]
            summed = {
                c: start["votes"].get(c, 0) + deltas.get(c, 0)
                for c in set(start["votes"]) | set(deltas)
            }
            assert {c: n for c, n in summed.items() if n} == {
                c: n for c, n in end["votes"].items() if n
            }
            assert start["tps_reported"] + counted == end["tps_reported"]
            assert (
                start["invalid"] + invalid == end["invalid"]
                and start["voters"] + voters == end["voters"]
            )

        # 4. Every applied decision is one change, corrections with their old -> new revision;
        #    nothing else is.
        feed = []
        cursor = None
        while True:
            since = f"&since={cursor}" if cursor else ""
            page = get(port, f"/api/changes?ballot=PPWP{since}&limit=1000")[1]
            feed += page["changes"]
            if not page["changes"]:
                break
            cursor = page["next"]
        applied = ch.command(
            "SELECT count() FROM tally_decisions FINAL WHERE ballot = 'PPWP' AND decision = "
            "'applied'"
        )
        # duplicates, stale resends and rejections stay in the audit trail only
        assert len(feed) == applied
        corrections = [c for c in feed if c["kind"] == "correction"]
        assert corrections and all(
            c["revision"]["new"] > c["revision"]["old"] >= 1 for c in corrections
        )
        assert all(c["revision"]["old"] == 0 for c in feed if c["kind"] == "first count")
        assert len({(c["tps"], c["revision"]["new"]) for c in feed}) == len(feed)
        newest = get(port, "/api/changes?ballot=PPWP&order=desc&limit=5")[1]["changes"]
        assert newest == feed[::-1][:5]

        # 5. Open data as of B: the files agree with the results as of B, the manifest with the
        #    files, and the API serves the same bytes.
        for fmt in ("csv", "jsonl", "parquet"):
            target = tmp_path / f"export-{fmt}"
            args = (
                "--ballot",
                "DPR",
                "--level",
                "province",
                "--format",
                fmt,
                "--as-of",
                b,
                "--out",
                str(target),
            )
            tally(pipeline, "export", *args)
            manifest = orjson.loads((target / "MANIFEST.json").read_bytes())
            assert manifest["as_of"] == b and manifest["registry"]["loads"] >= 1
            for entry in manifest["files"]:
                data = (target / entry["name"]).read_bytes()
                assert (
                    hashlib.sha256(data).hexdigest() == entry["sha256"]
                    and len(data) == entry["bytes"]
                )
                served = raw(port, f"/api/export/DPR/province/{entry['name']}?as_of={b}")
                assert hashlib.sha256(served).hexdigest() == entry["sha256"]
            rows = chdb.query(
                f"SELECT count() FROM file('{target}/votes.{fmt}', '{FORMATS[fmt]}')", "CSV"
            )
            assert int(str(rows).strip()) == next(
                f["rows"] for f in manifest["files"] if f["name"] == f"votes.{fmt}"
            )
        expected = get(port, f"/api/results?ballot=DPR&level=province&as_of={b}")[1]["regions"]
        with open(tmp_path / "export-csv" / "regions.csv", newline="", encoding="utf-8") as f:
            regions = {r["code"]: r for r in csv.DictReader(f)}
        with open(tmp_path / "export-csv" / "votes.csv", newline="", encoding="utf-8") as f:
            votes: dict[str, dict[str, int]] = {}
            for row in csv.DictReader(f):
                votes.setdefault(row["code"], {})[row["choice"]] = int(row["votes"])
        for region in expected:
            assert int(regions[region["code"]]["tps_reported"]) == region["tps_reported"]
            assert int(regions[region["code"]]["valid"]) == region["valid"]
            assert votes.get(region["code"], {}) == {c: n for c, n in region["votes"].items() if n}
        manifest = get(port, f"/api/export/DPR/province/MANIFEST.json?as_of={b}&format=csv")[1]
        assert (
            manifest["files"]
            == orjson.loads((tmp_path / "export-csv" / "MANIFEST.json").read_bytes())["files"]
        )


def test_changes_written_before_the_narrow_deltas_read_as_the_ones_after(pipeline):
    """A night begun before schema 016 holds change rows with their deltas as a Map; later ones
    hold them as two arrays. Results below the written levels, results as of a moment, the change
    feed read both alike (through `moved`)."""
    from datetime import UTC, datetime

    from streams.clickhouse.client import connect
    from streams.read.changes import changes
    from streams.read.totals import region_sums

    ch = connect(pipeline)
    head = (
        "INSERT INTO region_totals (ballot, level, region, choice, revision, tps_reported, "
        "invalid, voters, votes, event_id, gateway, decided_at, "
    )
    ch.command(  # before 016: the Map, as the workers wrote it then
        head + "deltas) VALUES ('PPWP', 'tps', '3171010001001', '0000000001', 1, 1, 2, 152, 0, "
        "'e-1', 'gw', '2024-02-14 12:00:00', map('01', 100, '02', 50))"
    )
    ch.command(  # after: the arrays, as the workers write them now
        head + "delta_choices, delta_votes) VALUES "
        "('PPWP', 'tps', '3171010001002', '0000000001', 1, 1, 0, 16, 0, 'e-2', 'gw', "
        "'2024-02-14 12:00:01', ['01', '03'], [7, 9]), "
        "('PPWP', 'tps', '3171010001001', '0000000002', 1, 0, 0, -10, 0, 'e-3', 'gw', "
        "'2024-02-14 12:00:02', ['01'], [-10])"
    )
    sums, _ = region_sums(ch, "PPWP", "district", "3171")
    assert sums["317101"]["votes"] == {"01": 97, "02": 50, "03": 9}
    assert sums["317101"]["tps_reported"] == 2 and sums["317101"]["voters"] == 158
    before, _ = region_sums(
        ch, "PPWP", "district", "3171", as_of=datetime(2024, 2, 14, 12, 0, 1, tzinfo=UTC)
    )
    assert before["317101"]["votes"] == {"01": 107, "02": 50, "03": 9}
    feed = changes(ch, "PPWP")["changes"]
    assert [(c["tps"], c["votes"]) for c in feed] == [
        ("3171010001001", {"01": 100, "02": 50}),
        ("3171010001002", {"01": 7, "03": 9}),
        ("3171010001001", {"01": -10}),
    ]
