"""The `tally` command line: one place where flags meet the settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.ops import reading, transparency
from streams.ops.options import (
    ClickHouseOpt,
    DataDirOpt,
    KafkaOpt,
    NamespaceOpt,
    fail,
    settings_from,
)
from streams.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="tally: counts an election night, from gateways through Kafka to ClickHouse.",
)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"tally {version('tally')}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print tally's version and exit"
        ),
    ] = False,
) -> None:
    """tally: counts an election night, from gateways through Kafka to ClickHouse."""


@app.command()
def broker(
    data_dir: DataDirOpt = None,
    port: Annotated[int | None, typer.Option(help="port; default a free one")] = None,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) in the foreground."""
    from streams.embedded.run import run_broker
    from streams.embedded.servers import EmbeddedError

    try:
        raise typer.Exit(run_broker(settings_from(data_dir=data_dir), port))
    except EmbeddedError as exc:
        fail(str(exc))


@app.command()
def clickhouse(
    data_dir: DataDirOpt = None,
    port: Annotated[int | None, typer.Option(help="port; default a free one")] = None,
) -> None:
    """Run the embedded ClickHouse (chDB behind the ClickHouse HTTP interface) in the foreground."""
    from streams.embedded.run import run_clickhouse
    from streams.embedded.servers import EmbeddedError

    try:
        raise typer.Exit(run_clickhouse(settings_from(data_dir=data_dir), port))
    except EmbeddedError as exc:
        fail(str(exc))


@app.command()
def up(data_dir: DataDirOpt = None) -> None:
    """Start the embedded broker and ClickHouse in the background (if not running) and print their
    addresses."""
    from streams.embedded import servers

    settings = settings_from(data_dir=data_dir)
    try:
        typer.echo(f"kafka      {servers.ensure(settings, servers.BROKER)}")
        address = servers.without_credentials(servers.ensure(settings, servers.CLICKHOUSE))
        typer.echo(
            f"clickhouse {address} (users and passwords: {settings.embedded_dir / servers.USERS})"
        )
    except servers.EmbeddedError as exc:
        fail(str(exc))


@app.command()
def down(data_dir: DataDirOpt = None) -> None:
    """Stop the embedded servers recorded in the data dir."""
    from streams.embedded import servers

    settings = settings_from(data_dir=data_dir)
    for name in (servers.BROKER, servers.CLICKHOUSE):
        typer.echo(f"{name}: {'stopped' if servers.stop(settings, name) else 'not running'}")


@app.command()
def init(
    kafka: KafkaOpt = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
    namespace: NamespaceOpt = None,
    partitions: Annotated[
        int | None, typer.Option(help="partitions of new topics [env TALLY_PARTITIONS, default 8]")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(help="create the tables ON CLUSTER as Replicated tables [env TALLY_CLUSTER]"),
    ] = None,
) -> None:
    """Create the topics and apply schemas/clickhouse/*.sql, idempotently."""
    import asyncio

    from streams.clickhouse.client import apply_schema
    from streams.embedded.servers import kafka_bootstrap
    from streams.kafka.produce import create_topics

    settings = settings_from(
        kafka, clickhouse, data_dir, namespace, partitions=partitions, cluster=cluster
    )
    created = asyncio.run(create_topics(settings, kafka_bootstrap(settings)))
    typer.echo(f"topics created: {', '.join(created) or 'none (they exist)'}")
    typer.echo(f"schema applied: {', '.join(apply_schema(settings))}")


@app.command()
def worker(
    kafka: KafkaOpt = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
    namespace: NamespaceOpt = None,
    batch_size: Annotated[int | None, typer.Option(help="events per batch at most")] = None,
    loglevel: Annotated[str, typer.Option(help="faust log level")] = "info",
    log_format: Annotated[str, typer.Option(help="text, or json: one JSON object a line")] = "text",
    metrics_port: Annotated[
        int | None, typer.Option(help="serve Prometheus metrics at :PORT/metrics")
    ] = None,
) -> None:
    """Run one stream-processing worker (faust) until SIGTERM or SIGINT; several may run at once."""
    from streams.kafka.worker import run_worker

    if log_format not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="--log-format")
    settings = settings_from(kafka, clickhouse, data_dir, namespace, batch_size=batch_size)
    run_worker(settings, loglevel=loglevel, log_format=log_format, metrics_port=metrics_port)


@app.command()
def simulate(
    tps: Annotated[int, typer.Option(help="number of TPS")] = 2000,
    seed: Annotated[int, typer.Option(help="seed: the same arguments give the same events")] = 1,
    rate: Annotated[float | None, typer.Option(help="events per second at most")] = None,
    speedup: Annotated[
        float | None,
        typer.Option(
            help="follow the 2024 arrival curve, this many times faster (3600: an hour a second)"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="write registry.jsonl, events.jsonl, truth.jsonl and truth-tps.jsonl here"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="write --out files only; produce nothing")
    ] = False,
    ballots: Annotated[
        str, typer.Option(help="comma-separated ballots: PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB")
    ] = "PPWP",
    duplicates: Annotated[
        float, typer.Option(help="share of events resent with the same event_id")
    ] = 0.0,
    corrections: Annotated[
        float, typer.Option(help="share of tallies corrected by a later revision")
    ] = 0.0,
    invalid: Annotated[
        float, typer.Option(help="share of events broken in realistic ways (left out of the truth)")
    ] = 0.0,
    forged: Annotated[
        float,
        typer.Option(
            help="share of tallies also forged: tampered under the old signature, "
            "signed by another TPS's key, unsigned"
        ),
    ] = 0.0,
    unsigned: Annotated[
        bool,
        typer.Option("--unsigned", help="devices do not sign (needs TALLY_REQUIRE_SIGNATURES=0)"),
    ] = False,
    abroad: Annotated[
        bool | None,
        typer.Option(
            "--abroad/--no-abroad",
            help="add TPS abroad (region 99: PPWP, and DPR in DKI Jakarta II), "
            "2024's 3,059 at this scale; default: only at --tps 820161",
        ),
    ] = None,
    regions: Annotated[
        Path | None,
        typer.Option(help="Kemendagri region list (code,name CSV): put the TPS in its villages"),
    ] = None,
    kafka: KafkaOpt = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Act as the ingestion gateways: build a registry of N TPS and produce one tally per TPS and
    ballot."""
    # Long because typer declares each of the simulator's options as a parameter above.
    from streams.gateways.gateway import run_simulation
    from streams.gateways.simulate import Plan

    chosen = tuple(b.strip() for b in ballots.split(",") if b.strip())
    plan = Plan(
        tps,
        seed,
        chosen,
        duplicates,
        corrections,
        invalid,
        forged,
        signed=not unsigned,
        abroad=abroad,
    )
    if dry_run and out is None:
        fail("--dry-run needs --out")
    from streams.gateways.kemendagri import KemendagriError

    try:
        run_simulation(
            settings_from(kafka, clickhouse, data_dir, namespace),
            plan,
            out,
            dry_run,
            rate,
            regions,
            speedup,
        )
    except (KemendagriError, ValueError) as exc:
        fail(str(exc))


@app.command()
def produce(
    file: Annotated[str, typer.Argument(help="JSONL file, or - for stdin")],
    rate: Annotated[float | None, typer.Option(help="events per second at most")] = None,
    kafka: KafkaOpt = None,
    data_dir: DataDirOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Publish JSONL events exactly as given (key = the event's tps; a non-JSON line goes as raw
    bytes)."""
    import asyncio
    import sys

    from streams.embedded.servers import kafka_bootstrap
    from streams.kafka.auth import kafka_options
    from streams.kafka.produce import publish
    from streams.settings import SUBMISSIONS

    settings = settings_from(kafka, None, data_dir, namespace)
    stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115 - closed below
    try:
        lines = (line.rstrip(b"\r\n") for line in stream if line.strip())
        sent = asyncio.run(
            publish(
                kafka_bootstrap(settings),
                settings.topic(SUBMISSIONS),
                lines,
                rate,
                auth=kafka_options(settings),
            )
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    typer.echo(f"produced {sent} events to {settings.topic(SUBMISSIONS)}")


@app.command()
def verify(
    truth: Annotated[Path, typer.Option(help="truth.jsonl written by simulate --out")],
    tps_truth: Annotated[
        Path | None,
        typer.Option(
            help="its TPS, compared in ClickHouse; default: truth-tps.jsonl beside --truth"
        ),
    ] = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Exit 0 if and only if ClickHouse holds exactly the truth at every level; else print the
    differences."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from streams.clickhouse.client import connect
    from streams.gateways.truth import TRUTH_TPS
    from streams.read.log_view import checkpoint_differences
    from streams.read.results import read_truth
    from streams.read.results import verify as verify_truth

    client = connect(settings_from(clickhouse=clickhouse, data_dir=data_dir))
    tps_file = tps_truth or truth.with_name(TRUTH_TPS)
    if not tps_file.exists():
        if tps_truth is not None:
            fail(f"no such file: {tps_truth}")
        typer.secho(
            f"verify: no {TRUTH_TPS} beside {truth}: the votes of TPS, villages and districts go "
            "unchecked",
            err=True,
        )
    size = tps_file.stat().st_size if tps_file.exists() else 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task(
            "verify: every level of every ballot", total=truth.stat().st_size + size
        )
        groups = read_truth(truth, lambda n: progress.update(task, completed=n))
        differences = verify_truth(
            client,
            groups,
            tps_file=tps_file if size else None,
            progress=lambda n: progress.update(task, completed=truth.stat().st_size + n),
        )
    # the log's latest signed totals, if there is a log
    differences += checkpoint_differences(client)
    if differences:
        typer.echo("\n".join(differences))
        typer.secho("verify: ClickHouse differs from the truth", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.secho("verify: exact at every level", fg=typer.colors.GREEN)


@app.command()
def demo(
    tps: Annotated[int, typer.Option(help="number of TPS")] = 10000,
    seed: Annotated[int, typer.Option(help="seed")] = 2024,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="end by serving the results page until Ctrl-C"),
    ] = True,
    port: Annotated[int, typer.Option(help="port of the results page")] = 8080,
    data_dir: DataDirOpt = None,
) -> None:
    """Start the embedded servers, init, one worker, simulate N TPS on all five ballots, wait for
    the totals, verify them, print results and the DPR seats, then serve the page."""
    from streams.ops.demo import run_demo

    raise typer.Exit(run_demo(settings_from(data_dir=data_dir), tps, seed, port if serve else None))


@app.command()
def bench(
    tps: Annotated[int, typer.Option(help="number of TPS")] = 100_000,
    ballots: Annotated[str, typer.Option(help="comma-separated ballots")] = "PPWP",
    workers: Annotated[int, typer.Option(help="tally workers")] = 1,
    rate: Annotated[
        str,
        typer.Option(
            help="offered events/s of the latency phase, or several (500,1000,2000): a phase each, "
            "and the highest whose p99 stays under 1 s is reported as the rate held"
        ),
    ] = "2000",
    latency_seconds: Annotated[float, typer.Option(help="length of each latency phase")] = 10.0,
    seed: Annotated[int, typer.Option(help="seed")] = 1,
    json: Annotated[Path | None, typer.Option("--json", help="write the report here")] = None,
    log: Annotated[
        bool,
        typer.Option(
            "--log/--no-log",
            help="the transparency log: workers keep signed events, its appender runs",
        ),
    ] = True,
    data_dir: DataDirOpt = None,
) -> None:
    """Run the whole pipeline on the embedded default and report throughput, latency, CPU, RSS and
    the baseline."""
    from streams.ops.bench import main_command, run_bench

    try:
        rates = [float(r) for r in rate.split(",")]
    except ValueError:
        fail(f"--rate: {rate!r} is not a number or a comma-separated list of numbers")
    if not rates or min(rates) <= 0:
        fail("--rate: every offered rate is above 0 events/s")
    raise typer.Exit(
        run_bench(
            settings_from(data_dir=data_dir),
            tps,
            ballots,
            workers,
            rates,
            latency_seconds,
            seed,
            json,
            main_command(),
            log,
        )
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Serve the read API (JSON): /api/results, /api/tps/{code}, /api/anomalies,
    /api/openapi.json."""
    from streams.read.api import serve as run

    run(settings_from(clickhouse=clickhouse, data_dir=data_dir), host, port)


registry_app = typer.Typer(help="Load and import the registry of regions, TPS and contests.")
app.add_typer(registry_app, name="registry")


@registry_app.command("load")
def registry_load(
    file: Annotated[Path, typer.Argument(help="registry JSONL (schemas/registry.v1.schema.json)")],
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Replace the registry in ClickHouse with this file; workers pick it up within seconds."""
    from streams.clickhouse.client import connect
    from streams.clickhouse.registry_store import load_registry
    from streams.gateways.registry_file import contest_errors, read_records

    errors = contest_errors(read_records(file))
    if errors:
        typer.echo(
            "registry not loaded (nothing was replaced):\n" + "\n".join(f"  {e}" for e in errors),
            err=True,
        )
        raise typer.Exit(2)
    counts = load_registry(
        connect(settings_from(clickhouse=clickhouse, data_dir=data_dir)), read_records(file)
    )
    typer.echo(
        f"registry loaded: {counts['region']} regions, {counts['tps']} TPS, {counts['contest']} "
        "contests"
    )


@registry_app.command("revoke")
def registry_revoke(
    key_id: Annotated[
        str, typer.Argument(help="the device key to revoke (a `key` record's key_id)")
    ],
    at: Annotated[
        str | None,
        typer.Option(help="ISO 8601 time with offset from which events are refused; default: now"),
    ] = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a TPS device key (lost or stolen device): events received from then on are rejected
    REVOKED_KEY."""
    import time

    from streams.clickhouse.client import connect
    from streams.clickhouse.registry_store import revoke_key
    from streams.core.signatures import epoch

    try:
        moment = epoch(at) if at else time.time()
    except ValueError as exc:
        fail(f"--at: {exc}")
    if not revoke_key(
        connect(settings_from(clickhouse=clickhouse, data_dir=data_dir)), key_id, moment
    ):
        fail(f"no key {key_id!r} in the registry", 1)
    typer.echo(f"key {key_id} revoked; workers refuse its events within seconds")


@registry_app.command("import-kemendagri")
def registry_import_kemendagri(
    file: Annotated[
        Path, typer.Argument(help="Kemendagri region list: code,name lines with dotted codes")
    ],
    out: Annotated[Path, typer.Option(help="registry JSONL to write (regions only)")] = Path(
        "regions.jsonl"
    ),
) -> None:
    """Read the official region list as published and write its regions in the registry format."""
    from streams.gateways.kemendagri import KemendagriError, parse_regions
    from streams.gateways.registry_file import write_records

    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            count = write_records(out, parse_regions(fh, str(file)))
    except KemendagriError as exc:
        fail(str(exc))
    typer.echo(
        f"wrote {count} regions to {out}; simulate onto them with: tally simulate --regions {file}"
    )


@app.command()
def audit(
    tps: Annotated[str, typer.Option(help="the TPS code (13 digits)")],
    ballot: Annotated[str | None, typer.Option(help="only this ballot")] = None,
    json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """A TPS's full history: every event received, its decision and reasons, gateway, key id and
    time."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from streams.clickhouse.audit import history
    from streams.clickhouse.client import connect

    if not (len(tps) == 13 and tps.isascii() and tps.isdigit()):
        fail("--tps is 13 digits")
    events = history(
        connect(settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True),
        tps,
        ballot,
    )
    if not events:
        fail(
            f"no event was ever received for TPS {tps}"
            + (f" and ballot {ballot}" if ballot else ""),
            1,
        )
    if json:
        for event in events:
            typer.echo(orjson.dumps(event).decode())
        return
    table = Table(title=f"TPS {tps}: {len(events)} events")
    for column in (
        "received",
        "ballot",
        "rev",
        "event_id",
        "decision",
        "reasons / flags",
        "gateway",
        "key_id",
    ):
        table.add_column(column)
    for e in events:
        why = ", ".join(e["reasons"]) or ", ".join(e["flags"])
        table.add_row(
            e["received_at"],
            e["ballot"],
            str(e["revision"]),
            e["event_id"],
            e["decision"],
            why,
            e["gateway"],
            e["key_id"],
        )
    Console().print(table)
    for e in events:
        for finding in e["findings"] or ():
            typer.echo(f"  {e['event_id']}: {finding}")


@app.command()
def validate(
    registry: Annotated[
        Path | None,
        typer.Option(
            help="registry JSONL; with it, device signatures and registry rules apply too"
        ),
    ] = None,
) -> None:
    """Read JSONL events on stdin; write one JSON decision per line (exit 0 even when events are
    rejected)."""
    import sys

    import orjson

    from streams.core.registry import Registry
    from streams.gateways.registry_file import read_records
    from streams.ops.validation_report import judge_line

    known = Registry.from_records(read_records(registry)) if registry else None
    require = Settings.from_env().require_signatures
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(orjson.dumps(judge_line(line.rstrip(b"\r\n"), known, require)) + b"\n")
    out.flush()


@app.command()
def status(
    json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    watch: Annotated[
        float | None, typer.Option(help="refresh every this many seconds until Ctrl-C")
    ] = None,
    kafka: KafkaOpt = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """One screen for the operator: broker and ClickHouse reachable, partitions with their worker
    and lag, events/s, decisions, the registry, the log's last checkpoint."""
    import time

    import orjson
    from rich.console import Console

    from streams.ops.status import print_status
    from streams.ops.status import status as read_status

    settings = settings_from(kafka, clickhouse, data_dir, namespace)
    console = Console()
    while True:
        data = read_status(settings)
        if json:
            typer.echo(orjson.dumps(data).decode())
        else:
            if watch:
                console.clear()
            print_status(data, console)
        if not watch:
            return
        time.sleep(watch)


# results, seats, changes, export: listed after the commands that run the night
reading.register(app)
transparency.register(app)  # keygen, logger, log ...

if __name__ == "__main__":
    app()
