"""The transparency log's commands: `tally keygen`, `tally logger` (the appender), and `tally log
...` (checkpoints, proofs, verifying them, auditing the whole log)."""

from __future__ import annotations

import base64
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from streams.ops.options import ClickHouseOpt, DataDirOpt, fail, settings_from

if TYPE_CHECKING:
    from streams.core.checkpoint import Checkpoint
from streams.settings import Settings

log_app = typer.Typer(
    no_args_is_help=True, help="The public, tamper-evident log of every counted tally (RFC 9162)."
)
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def write_key(path: Path, name: str) -> str:
    """A new operator key in `path` (mode 0600): its seed, public key and verifier key; returns the
    last."""
    from nacl.utils import random as random_bytes

    from streams.core.checkpoint import public_key_of, verifier_key

    seed = random_bytes(32)
    public = public_key_of(seed)
    record = {
        "name": name,
        "seed": base64.b64encode(seed).decode(),
        "public_key": base64.b64encode(public).decode(),
        "verifier_key": verifier_key(name, public),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    return record["verifier_key"]


def read_key(settings: Settings) -> tuple[str, bytes]:
    """(name, seed) of the operator key; exits 2 saying how to make one if there is none."""
    path = settings.operator_key_file
    if not path.exists():
        fail(f"no operator key at {path}: make one with `tally keygen` (or set TALLY_OPERATOR_KEY)")
    record = orjson.loads(path.read_bytes())
    return record["name"], base64.b64decode(record["seed"])


def published_key(settings: Settings) -> str:
    """The verifier key of the operator's own key file (an outside checker passes the published one
    with --key); exits 2 saying so if there is no key file."""
    if not settings.operator_key_file.exists():
        fail("give --key (the operator's published verifier key)")
    return orjson.loads(settings.operator_key_file.read_bytes())["verifier_key"]


def keygen(
    out: Annotated[
        Path | None,
        typer.Option(
            help="key file to create (default: TALLY_OPERATOR_KEY or <data dir>/operator.key)"
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="the key's name: the log's origin [env TALLY_LOG_ORIGIN]")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Make the operator's Ed25519 key that signs the log's checkpoints; print its public verifier
    key."""
    settings = settings_from(data_dir=data_dir)
    path = out or settings.operator_key_file
    if path.exists():
        fail(f"{path} exists: a key is never overwritten (remove it first if you mean to)")
    typer.echo(write_key(path, name or settings.log_origin))


def logger(
    interval: Annotated[
        float, typer.Option(help="seconds between checkpoints while tallies arrive")
    ] = 2.0,
    create_key: Annotated[
        bool, typer.Option("--create-key", help="make the operator key if there is none")
    ] = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the log's appender until SIGTERM/SIGINT: leaves from every applied tally, a signed
    checkpoint every few seconds while they arrive. One per night."""
    import logging

    from streams.clickhouse.client import connect
    from streams.clickhouse.log_store import LogAppender

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = settings_from(clickhouse=clickhouse, data_dir=data_dir)
    if create_key and not settings.operator_key_file.exists():
        typer.echo(
            f"operator key created: {write_key(settings.operator_key_file, settings.log_origin)}"
        )
    name, seed = read_key(settings)
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    appender = LogAppender(connect(settings), name, seed, cluster=settings.cluster)
    typer.echo(f"log {name}: {appender.state.size} leaves, appending", err=True)
    appender.run(interval, lambda: bool(stopping), time.sleep)


def proof(
    tps: Annotated[str, typer.Option(help="TPS code (13 digits)")],
    ballot: Annotated[str, typer.Option(help="PPWP, DPR, DPD, DPRD_PROV or DPRD_KAB")] = "PPWP",
    checkpoint: Annotated[
        int | None, typer.Option(help="tree size of the checkpoint (default: the latest)")
    ] = None,
    json: JsonOpt = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The inclusion proof of a TPS's latest tally of a ballot in a signed checkpoint."""
    from streams.clickhouse.client import connect
    from streams.read.dapils import DapilError
    from streams.read.log_view import inclusion

    try:
        data = inclusion(
            connect(settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True),
            tps,
            ballot,
            checkpoint,
        )
    except DapilError as exc:
        fail(str(exc))
    if json:
        typer.echo(orjson.dumps(data).decode())
    else:
        event = orjson.loads(base64.b64decode(data["leaf"]))["event"]
        typer.echo(
            f"leaf {data['leaf_index']} of {data['tree_size']}: {event['ballot']} {event['tps']} "
            f"revision {event['revision']}"
        )
        typer.echo(f"root {data['root_hash']}, {len(data['audit_path'])} hashes in the audit path")


def checkpoints(
    json: JsonOpt = False, clickhouse: ClickHouseOpt = None, data_dir: DataDirOpt = None
) -> None:
    """The signed checkpoints, newest first."""
    from streams.clickhouse.client import connect
    from streams.read.log_view import checkpoints as read_checkpoints

    data = read_checkpoints(
        connect(settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True)
    )
    if json:
        typer.echo(orjson.dumps(data).decode())
        return
    for c in data["checkpoints"]:
        typer.echo(f"{c['tree_size']:>10,}  {c['root_hash']}  {c['decided_at']}")


def verify(
    source: Annotated[
        str,
        typer.Argument(help="a proof (JSON of `log proof --json` or /api/log/proof) file or URL"),
    ],
    key: Annotated[
        str | None,
        typer.Option(help="the operator's verifier key (name+id+key); default: the key file's"),
    ] = None,
    tps: Annotated[
        str | None, typer.Option(help="the TPS the proof must be of (default: a URL's tps=)")
    ] = None,
    ballot: Annotated[
        str | None, typer.Option(help="the ballot the proof must be of (default: a URL's ballot=)")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Check an inclusion or consistency proof and the signature of its checkpoints: exit 0 if it
    holds. An inclusion proof must be of the TPS and ballot asked. From a URL, it also says how old
    the checkpoint is and whether the server has a newer one, checked consistent with it."""
    from urllib.parse import parse_qs, urlparse

    from streams.core.proofs import ProofError, check_proof

    settings = settings_from(data_dir=data_dir)
    key = key or published_key(settings)
    is_url = source.startswith(("http://", "https://"))
    if is_url:
        asked = parse_qs(urlparse(source).query)
        tps = tps or next(iter(asked.get("tps", [])), None)
        ballot = ballot or next(iter(asked.get("ballot", [])), None)
    document = _fetch_json(source) if is_url else orjson.loads(Path(source).read_bytes())
    try:
        typer.echo(check_proof(document, key, tps, ballot))
        if is_url and "checkpoint" in document:
            for line in _freshness(source, document["checkpoint"], key):
                typer.echo(line)
    except ProofError as exc:
        fail(str(exc), 1)


def _fetch_json(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response:
        return orjson.loads(response.read())


def _freshness(source: str, signed: dict, key: str) -> list[str]:
    """How old the proof's checkpoint is, and whether the same server signed a newer one (then
    proven consistent with it, so the older one is a true prefix; the TPS may have been corrected
    since)."""
    from datetime import UTC, datetime
    from urllib.parse import urlparse

    from streams.core.moments import parse_moment
    from streams.core.proofs import ProofError, check_proof

    base = urlparse(source)._replace(path="", query="", fragment="").geturl()
    size = int(signed["tree_size"])
    lines = []
    if signed.get("signed_at"):
        minutes = (datetime.now(UTC) - parse_moment(signed["signed_at"])).total_seconds() / 60
        lines.append(
            f"checkpoint of {size:,} leaves, signed at {signed['signed_at']} ({minutes:.0f} min "
            "ago, as the server says: "
            "the time is not signed)"
        )
    newest = _fetch_json(f"{base}/api/log/checkpoints")["checkpoints"][0]
    if int(newest["tree_size"]) <= size:
        lines.append("it is the server's newest checkpoint")
        return lines
    consistency = _fetch_json(f"{base}/api/log/consistency?from={size}&to={newest['tree_size']}")
    try:
        check_proof(consistency, key)
    except ProofError as exc:
        raise ProofError(
            f"a newer checkpoint of {newest['tree_size']} leaves does not extend this one: {exc}"
        ) from None
    lines.append(
        f"NOT the newest: the server signed a checkpoint of {int(newest['tree_size']):,} leaves "
        "since (consistent with this "
        "one); the TPS's tally may have been corrected in it: ask for the proof in the newest "
        "checkpoint"
    )
    return lines


def consistency(
    old: Annotated[int, typer.Option("--from", help="the older checkpoint's tree size")],
    new: Annotated[int, typer.Option("--to", help="the newer checkpoint's tree size")],
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The consistency proof between two checkpoints, as JSON (check it with `tally log verify`)."""
    from streams.clickhouse.client import connect
    from streams.read.dapils import DapilError
    from streams.read.log_view import consistency as read_consistency

    try:
        typer.echo(
            orjson.dumps(
                read_consistency(
                    connect(
                        settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True
                    ),
                    old,
                    new,
                )
            ).decode()
        )
    except DapilError as exc:
        fail(str(exc))


def audit(
    checkpoint: Annotated[
        int | None, typer.Option(help="tree size of the checkpoint (default: the latest)")
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="the operator's verifier key; default: the key file's")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            help="recount from a `tally serve` (its public endpoints) instead of ClickHouse"
        ),
    ] = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """A full recount from the log: every leaf up to the checkpoint, its root and national totals
    recomputed and compared with the signed checkpoint and with the results as of its moment."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from streams.core.proofs import ProofError, signed_checkpoint
    from streams.ops.recount import from_api, from_clickhouse, recount
    from streams.read.dapils import DapilError

    settings = settings_from(clickhouse=clickhouse, data_dir=data_dir)
    key = key or published_key(settings)
    source = ApiSource(api) if api else ClickHouseSource(settings)
    try:
        signed = source.checkpoint(checkpoint)
        expected = signed_checkpoint(signed, key)
    except (DapilError, ProofError, LookupError) as exc:
        fail(str(exc), 1)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task("audit: every leaf", total=expected.size)
        pages = from_api(api) if api else from_clickhouse(source.client)
        root, totals = recount(
            pages,
            expected.size,
            lambda n: progress.update(task, completed=n),
            10_000 if api else 50_000,
        )
    problems = _problems(root, totals, expected, signed, source)
    if problems:
        typer.echo("\n".join(problems))
        fail("audit: the log does not add up", 1)
    typer.secho(
        f"audit: {expected.size:,} leaves add up to the signed root and totals, and to the results "
        f"as of {signed['decided_at']}",
        fg=typer.colors.GREEN,
    )


def _problems(
    root: bytes,
    totals: dict,
    expected: Checkpoint,
    signed: dict,
    source: ClickHouseSource | ApiSource,
) -> list[str]:
    """What the recount of the leaves (`root`, `totals`) does not share with the signed checkpoint
    (`expected`, as `signed`) or with the results as of its moment (`source`)."""
    from streams.core.moments import parse_moment

    problems = []
    if root != expected.root:
        problems.append(
            f"the leaves' root {root.hex()} is not the signed root {expected.root.hex()}"
        )
    moment = parse_moment(signed["decided_at"])
    for ballot in sorted(set(totals) | set(expected.totals)):
        mine, signed_totals = totals.get(ballot), expected.totals.get(ballot)
        said, counted = signed_totals and signed_totals.line(ballot), mine and mine.line(ballot)
        if said != counted:
            problems.append(f"{ballot}: the leaves add up to {counted}, the checkpoint says {said}")
        national = source.national(ballot, moment)
        held = (national["tps_reported"], national["invalid"], national["voters"])
        if mine is not None and held != (mine.tps, mine.invalid, mine.voters):
            problems.append(
                f"{ballot}: results as of {signed['decided_at']} say {held}, the leaves "
                f"{(mine.tps, mine.invalid, mine.voters)}"
            )
    return problems


class ClickHouseSource:
    """The log and results read straight from ClickHouse (the operator's own audit)."""

    def __init__(self, settings: Settings) -> None:
        from streams.clickhouse.client import connect

        self.client = connect(settings)

    def checkpoint(self, size: int | None) -> dict:
        from streams.read.log_view import checkpoint

        return checkpoint(self.client, size)

    def national(self, ballot: str, moment) -> dict:
        from streams.read.results import results

        return results(self.client, ballot, "national", None, moment)["regions"][0]


class ApiSource:
    """The log and results as anyone reads them: a `tally serve`'s endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}{path}", timeout=120) as response:
            return orjson.loads(response.read())

    def checkpoint(self, size: int | None) -> dict:
        listed = self._get("/api/log/checkpoints")["checkpoints"]
        found = [c for c in listed if size in (None, c["tree_size"])]
        if not found:
            raise LookupError(f"no checkpoint of size {size}" if size else "no checkpoint yet")
        return found[0]

    def national(self, ballot: str, moment) -> dict:
        from streams.core.moments import moment_text

        return self._get(
            f"/api/results?ballot={ballot}&level=national&as_of={moment_text(moment)}"
        )["regions"][0]


def register(app: typer.Typer) -> None:
    app.command()(keygen)
    app.command()(logger)
    for command in (proof, consistency, checkpoints, verify, audit):
        log_app.command()(command)
    app.add_typer(log_app, name="log")
