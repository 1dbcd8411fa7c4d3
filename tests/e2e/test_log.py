"""The transparency log on a real night: leaves, signed checkpoints, proofs an outsider checks (with
tally's code and with the standalone script), tampering caught, a restarted appender making the same
log, and the full audit."""

from __future__ import annotations

import base64
import random
import re
import subprocess
import sys
from datetime import UTC, datetime

import orjson
import pytest

from streams.clickhouse.client import connect
from streams.clickhouse.log_store import LogAppender
from streams.core import merkle
from streams.core.checkpoint import BallotTotals, Checkpoint, public_key_of, sign_note, verifier_key
from streams.core.proofs import ProofError, check_proof
from streams.ops.demo import wait_caught_up
from tests.conftest import REPO, api_server, get, tally
from tests.e2e.test_page import screen
from tests.unit.test_merkle import mth

ORIGIN = "tally/test"
SCRIPT = REPO / "schemas" / "log" / "verify.py"


@pytest.fixture
def night(pipeline, workers, tmp_path):
    """A counted night of two ballots with corrections and resends, and an operator key."""
    workers.start()
    out = tmp_path / "sim"
    tally(
        pipeline, "simulate", "--tps", "150", "--seed", "21", "--ballots", "PPWP,DPR",
        "--corrections", "0.2", "--duplicates", "0.1", "--invalid", "0.03", "--out", str(out),
    )  # fmt: skip
    wait_caught_up(pipeline, len((out / "events.jsonl").read_bytes().splitlines()), timeout_s=120)
    settings = pipeline.override(operator_key=str(tmp_path / "operator.key"), log_origin=ORIGIN)
    key = tally(settings, "keygen").stdout.decode().strip()
    seed = base64.b64decode(orjson.loads((tmp_path / "operator.key").read_bytes())["seed"])
    assert key == verifier_key(ORIGIN, public_key_of(seed))
    return settings, key, seed


def append_all(appender: LogAppender) -> None:
    while not appender.step()[1]:
        pass


def leaves(ch) -> list[bytes]:
    return [
        x.encode()
        for (x,) in ch.query("SELECT leaf FROM log_leaves FINAL ORDER BY idx").result_rows
    ]


def script(document: dict, key: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "proof.json"
    path.write_bytes(orjson.dumps(document))
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path), "--key", key], capture_output=True, timeout=60
    )


def test_the_log_proves_every_counted_tally_and_catches_tampering(night, tmp_path):
    settings, key, seed = night
    ch = connect(settings)
    appender = LogAppender(ch, ORIGIN, seed, page=37)
    appender.step()
    first = appender.checkpoint()  # a checkpoint partway
    append_all(appender)
    last = appender.checkpoint()
    assert 37 == first.size < last.size

    # Every applied decision is one leaf, each (ballot, tps, revision) once, in order; the root is
    # RFC 9162's.
    held = leaves(ch)
    applied = ch.command("SELECT count() FROM tally_decisions FINAL WHERE decision = 'applied'")
    assert len(held) == last.size == applied
    decided = [orjson.loads(x) for x in held]
    assert len(
        {(d["event"]["ballot"], d["event"]["tps"], d["decision"]["revision"]) for d in decided}
    ) == len(held)
    assert mth(held) == last.root and mth(held[:37]) == first.root
    # corrections are leaves too
    assert any(d["decision"]["previous_revision"] >= 1 for d in decided)

    with api_server(settings) as port:
        # Inclusion proofs of random TPS, checked by tally's code and by the standalone script.
        pairs = sorted({(d["event"]["tps"], d["event"]["ballot"]) for d in decided})
        for tps, ballot in random.Random(3).sample(pairs, 12):
            status, proof = get(port, f"/api/log/proof?tps={tps}&ballot={ballot}")
            assert status == 200, proof
            assert "included" in check_proof(proof, key)
            ran = script(proof, key, tmp_path)
            assert ran.returncode == 0 and b"OK" in ran.stdout, ran.stdout + ran.stderr
            newest = max(
                (d for d in decided if (d["event"]["tps"], d["event"]["ballot"]) == (tps, ballot)),
                key=lambda d: d["decision"]["revision"],
            )
            # the latest tally of that TPS
            assert orjson.loads(base64.b64decode(proof["leaf"])) == newest
        # ... also in the older checkpoint, and the consistency between the two.
        tps, ballot = pairs[0]
        early = decided[0]["event"]
        status, old = get(
            port, f"/api/log/proof?tps={early['tps']}&ballot={early['ballot']}&checkpoint=37"
        )
        assert status == 200 and old["tree_size"] == 37 and "included" in check_proof(old, key)
        status, consistent = get(port, f"/api/log/consistency?from=37&to={last.size}")
        assert status == 200 and "consistent" in check_proof(consistent, key)
        assert script(consistent, key, tmp_path).returncode == 0
        assert get(port, f"/api/log/proof?tps=9999999999999&ballot={ballot}")[0] == 404
        # no checkpoints of those sizes
        assert get(port, "/api/log/consistency?from=38&to=40")[0] == 404
        # A full recount from public data alone: the leaves, checkpoints and results of the API.
        public = tally(
            settings, "log", "audit", "--api", f"http://127.0.0.1:{port}", "--key", key, check=False
        )
        assert (
            public.returncode == 0 and f"{last.size:,} leaves add up" in public.stdout.decode()
        ), public.stderr.decode()
        page = get(port, "/api/log/leaves?start=0&end=1000000")[1]
        # a page at most, and where it ends
        assert page["end"] == min(last.size, 10_000) == len(page["leaves"])
        listed = get(port, "/api/log/checkpoints")[1]["checkpoints"]
        assert [c["tree_size"] for c in listed] == [last.size, 37] and listed[0][
            "verifier_key"
        ] == key
        # The page checks a TPS in the browser: WebCrypto SHA-256 for the proof, Ed25519 where it
        # has it.
        dom = screen(port, f"#/{ballot}/log/{tps}", tmp_path)
        assert re.search(
            r'id="log-check" data-result="ok" data-asked="true" data-signature="true"', dom
        ), dom[-3000:]
        assert f'data-size="{last.size}"' in dom
        dom = screen(port, f"#/{ballot}/log/9999999999999", tmp_path)
        assert 'data-result="missing"' in dom

        # Tampering with a leaf, one byte of the checkpoint, one step of the proof, or the key:
        # caught.
        status, proof = get(port, f"/api/log/proof?tps={tps}&ballot={ballot}")
        leaf = orjson.loads(base64.b64decode(proof["leaf"]))
        leaf["event"]["votes"] = {c: n + 1 for c, n in leaf["event"]["votes"].items()}
        forged = {**proof, "leaf": base64.b64encode(orjson.dumps(leaf)).decode()}
        note = proof["checkpoint"]["note"]
        digits = note.index("\n") + 1  # the tree size's first digit
        bent = {
            **proof,
            "checkpoint": {**proof["checkpoint"], "note": note[:digits] + "9" + note[digits + 1 :]},
        }
        path = list(proof["audit_path"])
        path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
        stepped = {**proof, "audit_path": path}
        other = verifier_key(ORIGIN, public_key_of(b"\x07" * 32))
        for document, with_key in ((forged, key), (bent, key), (stepped, key), (proof, other)):
            with pytest.raises(ProofError):
                check_proof(document, with_key)
            assert script(document, with_key, tmp_path).returncode == 1

    # The operator's screen: partitions consumed to the end with their workers, decisions, the log.
    seen = orjson.loads(tally(settings, "status", "--json").stdout)
    assert seen["broker"]["lag"] == 0 and len(seen["broker"]["partitions"]) == settings.partitions
    assert (
        set(seen["clickhouse"]["leases"]) == set(seen["broker"]["partitions"])
        and len(seen["clickhouse"]["workers"]) == 1
    )
    assert seen["clickhouse"]["decisions"]["applied"] == applied
    assert seen["clickhouse"]["log_checkpoint"]["tree_size"] == last.size
    away = orjson.loads(tally(settings.override(kafka="127.0.0.1:9"), "status", "--json").stdout)
    # says what it could not read
    assert "error" in away["broker"] and away["clickhouse"]["reachable"]

    # A full recount from the log: the root, the signed totals and the results as of the checkpoint.
    audited = tally(settings, "log", "audit", check=False)
    assert audited.returncode == 0, audited.stdout.decode() + audited.stderr.decode()
    assert f"{last.size:,} leaves add up" in audited.stdout.decode()
    # `tally verify` also holds the latest checkpoint's totals to the results as of its moment: an
    # operator who signs totals the tallies do not add up to is caught.
    assert (
        tally(
            settings, "verify", "--truth", str(tmp_path / "sim" / "truth.jsonl"), check=False
        ).returncode
        == 0
    )
    lying = Checkpoint(
        ORIGIN,
        last.size + 1,
        last.root,
        {b: BallotTotals(t.tps + 1, t.invalid, t.voters, t.votes) for b, t in last.totals.items()},
    )
    ch.insert(
        "log_checkpoints",
        [(lying.size, lying.root, datetime.now(UTC), sign_note(lying.text(), ORIGIN, seed), key)],
        column_names=["size", "root", "decided_at", "note", "verifier_key"],
    )
    caught = tally(
        settings, "verify", "--truth", str(tmp_path / "sim" / "truth.jsonl"), check=False
    )
    assert caught.returncode == 1 and f"log checkpoint {last.size + 1}" in caught.stdout.decode()
    ch.command(
        "ALTER TABLE log_checkpoints DELETE WHERE size = {s:UInt64}",
        parameters={"s": lying.size},
        settings={"mutations_sync": 1},
    )
    proof_file = tmp_path / "cli-proof.json"
    proof_file.write_bytes(
        tally(settings, "log", "proof", "--tps", tps, "--ballot", ballot, "--json").stdout
    )
    assert tally(settings, "log", "verify", str(proof_file), "--key", key).returncode == 0

    # A restarted appender makes the same log: start again from nothing with other pages, "crash"
    # twice midway (a new appender recovers from what ClickHouse holds), and compare.
    for table in ("log_leaves", "log_nodes", "log_checkpoints"):
        ch.command(f"TRUNCATE TABLE {table}")
    again = LogAppender(ch, ORIGIN, seed, page=50)
    again.step()
    again = LogAppender(ch, ORIGIN, seed, page=11)
    again.step()
    again.step()
    again = LogAppender(ch, ORIGIN, seed, page=1000)
    append_all(again)
    assert leaves(ch) == held and again.checkpoint().root == last.root

    # A leaf rewritten in ClickHouse after the fact: the audit no longer adds up.
    idx, leaf = ch.query(
        "SELECT idx, leaf FROM log_leaves FINAL ORDER BY idx LIMIT 1 OFFSET 5"
    ).result_rows[0]
    changed = leaf.replace('"revision":', '"revision": ', 1)
    moment = datetime.fromisoformat(decided[5]["decision"]["applied_at"].replace("Z", "+00:00"))
    row = (idx, "PPWP", "", 0, moment, changed, merkle.leaf_hash(changed.encode()))
    ch.insert(
        "log_leaves",
        [row],
        column_names=["idx", "ballot", "tps", "revision", "decided_at", "leaf", "leaf_hash"],
    )
    refused = tally(settings, "log", "audit", check=False)
    assert refused.returncode == 1 and "root" in refused.stdout.decode()


@pytest.mark.parametrize("settled_only", [True, False], ids=["watermark", "without-watermark"])
def test_a_change_that_lands_late_is_never_missed_or_repeated_by_the_log(pipeline, settled_only):
    """As on a ClickHouse server (no moment gate): a change stamped at its insert's start lands 2 s
    later, while a later change lands at once and the appender reads between them. With the
    watermark the log waits for the late one and holds all three in stamp order; without it, it
    misses it."""
    import threading
    import time

    seed = bytes(range(32))
    ch, held, other = connect(pipeline), connect(pipeline), connect(pipeline)
    appender = LogAppender(ch, ORIGIN, seed, read_settings=dict, settled_only=settled_only)

    def insert(client, tps: str, votes: int, hold_s: float = 0.0) -> None:
        """A first count's change row, as a worker's insert writes it; now64(6) is taken when the
        statement starts, and the row lands when it ends, `hold_s` later."""
        client.command(
            "INSERT INTO region_totals (ballot, level, region, choice, revision, tps_reported, "
            "invalid, voters, votes, "
            "deltas, event, source, event_id, gateway, decided_at) "
            f"SELECT 'PPWP', 'tps', '{tps}', '0000000001', 1, 1, 0, {votes}, 0, map('01', "
            f'{votes}), \'{{"tps":"{tps}"}}\', '
            f"'0:0', 'e-{tps}', 'gw', now64(6) FROM numbers(4) WHERE sleepEachRow({hold_s / 4}) = "
            "0 LIMIT 1"
        )

    insert(other, "3171010001001", 100)
    late = threading.Thread(target=insert, args=(held, "3171010001002", 200, 2.0))
    late.start()
    time.sleep(0.5)
    insert(other, "3171010001003", 300)  # stamped after the late one, visible before it
    assert ch.command("SELECT count() FROM region_totals WHERE level = 'tps'") == 2
    appended, _ = appender.step()  # the late insert is still running
    late.join()
    append_all(appender)
    logged = [
        tps for (tps,) in ch.query("SELECT tps FROM log_leaves FINAL ORDER BY idx").result_rows
    ]
    if settled_only:
        assert appended == 1  # only the change stamped before the late insert began
        assert logged == ["3171010001001", "3171010001002", "3171010001003"]
        assert appender.state.totals["PPWP"].voters == 600
    else:
        assert logged == ["3171010001001", "3171010001003"]  # the late change is lost to the log


def test_log_verify_refuses_a_true_proof_of_another_tps_and_says_when_a_checkpoint_is_old(
    night, tmp_path
):
    """A server that lies: asked for TPS X, it answers with TPS Y's genuine proof. And an old,
    genuine checkpoint: it verifies, but the verifier says a newer one exists and checks it
    consistent."""
    import http.server
    import threading
    import urllib.parse
    import urllib.request

    settings, key, seed = night
    ch = connect(settings)
    appender = LogAppender(ch, ORIGIN, seed, page=37)
    appender.step()
    appender.checkpoint()
    append_all(appender)
    last = appender.checkpoint()
    with api_server(settings) as port:
        ppwp = dict.fromkeys(
            e["tps"]
            for e in (orjson.loads(x)["event"] for x in leaves(ch))
            if e["ballot"] == "PPWP"
        )
        asked, other = list(ppwp)[:2]  # two TPS, not one TPS's count and its correction
        _, proof_of_other = get(port, f"/api/log/proof?tps={other}&ballot=PPWP")
        body = orjson.dumps(proof_of_other)

        class Liar(http.server.BaseHTTPRequestHandler):
            """tally's own server, except that every proof it answers is TPS `other`'s."""

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.startswith("/api/log/proof"):
                    answer, kind = body, "application/json"
                else:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}{self.path}", timeout=30
                    ) as real:
                        answer, kind = real.read(), real.headers["Content-Type"]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        liar = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
        threading.Thread(target=liar.serve_forever, daemon=True).start()
        lied = f"http://127.0.0.1:{liar.server_port}/api/log/proof?tps={asked}&ballot=PPWP"
        refused = tally(settings, "log", "verify", lied, "--key", key, check=False)
        assert (
            refused.returncode == 1
            and f"not of PPWP at TPS {asked} as asked"
            in refused.stderr.decode() + refused.stdout.decode()
        )
        # The page asked for TPS X and shown Y's genuine proof: no tick, and it says so.
        dom = screen(liar.server_port, f"#/PPWP/log/{asked}", tmp_path)
        assert re.search(r'id="log-check" data-result="failed" data-asked="false"', dom), dom[
            -3000:
        ]
        assert f"BUKAN untuk TPS {asked}" in dom
        liar.shutdown()
        # The key the visitor brought from the operator's announcement, not the server's: checked by
        # it.
        dom = screen(port, f"?key={urllib.parse.quote(key)}#/PPWP/log/{asked}", tmp_path)
        assert re.search(
            r'data-result="ok" data-asked="true" data-signature="true" data-key="visitor"', dom
        ), dom[-3000:]
        # another key under the operator's name
        impostor = verifier_key(ORIGIN, public_key_of(bytes(32)))
        dom = screen(port, f"?key={urllib.parse.quote(impostor)}#/PPWP/log/{asked}", tmp_path)
        assert re.search(
            r'data-result="failed" data-asked="true" data-signature="false" data-key="visitor"', dom
        ), dom[-3000:]
        (tmp_path / "other.json").write_bytes(body)
        assert (
            tally(
                settings,
                "log",
                "verify",
                str(tmp_path / "other.json"),
                "--key",
                key,
                "--tps",
                asked,
                check=False,
            ).returncode
            == 1
        )
        # asked nothing
        assert (
            tally(settings, "log", "verify", str(tmp_path / "other.json"), "--key", key).returncode
            == 0
        )
        ran = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                str(tmp_path / "other.json"),
                "--key",
                key,
                "--tps",
                asked,
            ],
            capture_output=True,
            timeout=60,
        )
        assert ran.returncode == 1 and b"not the one asked" in ran.stdout

        # An old checkpoint: genuine, so it verifies, and the verifier says it is not the newest.
        early = orjson.loads(leaves(ch)[0])["event"]
        old = f"http://127.0.0.1:{port}/api/log/proof?tps={early['tps']}&ballot={early['ballot']}&checkpoint=37"
        said = tally(settings, "log", "verify", old, "--key", key).stdout.decode()
        assert "checkpoint of 37 leaves, signed at" in said
        assert (
            f"NOT the newest: the server signed a checkpoint of {last.size:,} leaves since" in said
        )
        newest = tally(
            settings, "log", "verify", old.replace("&checkpoint=37", ""), "--key", key
        ).stdout.decode()
        assert "it is the server's newest checkpoint" in newest
