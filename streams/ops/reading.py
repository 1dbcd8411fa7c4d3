"""The reading commands of `tally`: results and seats (now or at a moment), the change feed,
exports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from streams.ops.options import ClickHouseOpt, DataDirOpt, fail, settings_from

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="as the totals stood at this moment: ISO 8601 with an offset "
        "(2024-02-14T21:00:00+07:00) or epoch seconds",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def moment(text: str | None, option: str = "--as-of") -> datetime | None:
    """A moment from the command line, or exit 2 saying what is accepted."""
    from streams.core.moments import MomentError, moment_text, parse_moment

    if text is None:
        return None
    try:
        asked = parse_moment(text)
    except MomentError as exc:
        fail(f"{option}: {exc}")
        raise AssertionError from None  # fail() exits
    # answered as the API answers it: the totals now, their moment said
    if asked > datetime.now(UTC):
        typer.secho(
            f"note: {option} {moment_text(asked)} is in the future: these are the totals now",
            err=True,
        )
    return asked


def results(
    ballot: Annotated[str, typer.Option(help="PPWP, DPR, DPD, DPRD_PROV or DPRD_KAB")] = "PPWP",
    level: Annotated[
        str | None, typer.Option(help="national|province|regency|district|village|tps")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="limit to the children of this region (or itself at its level)"),
    ] = None,
    dapil: Annotated[
        str | None,
        typer.Option(help="one dapil of a legislative ballot: its parties, seats and candidates"),
    ] = None,
    as_of: AsOfOpt = None,
    json: JsonOpt = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Read the results from ClickHouse: per region (legislative ballots: party totals), or per
    dapil."""
    import orjson

    from streams.clickhouse.client import connect
    from streams.read.dapils import DapilError, dapil_results
    from streams.read.report import print_dapil, print_results
    from streams.read.results import choice_names
    from streams.read.results import results as read_results
    from streams.read.scopes import check_ballot, check_level, check_region

    when = moment(as_of)
    settings = settings_from(clickhouse=clickhouse, data_dir=data_dir)
    client = connect(settings, read_only=True)
    try:
        check_ballot(ballot)
        if dapil:
            data = dapil_results(client, ballot, dapil, settings.dpr_threshold, when)
        else:
            check_level(level)
            check_region(client, region)
            data = {
                **read_results(client, ballot, level, region, when),
                "names": choice_names(client, ballot),
            }
    except (ValueError, DapilError) as exc:
        fail(str(exc))
    if json:
        typer.echo(orjson.dumps(data).decode())
    elif dapil:
        print_dapil(data)
    else:
        print_results(data)


def seats(
    ballot: Annotated[str, typer.Option(help="DPR, DPD, DPRD_PROV or DPRD_KAB")] = "DPR",
    dapil: Annotated[str | None, typer.Option(help="only this dapil")] = None,
    as_of: AsOfOpt = None,
    json: JsonOpt = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Provisional seats from the totals (now or at a moment): Sainte-Lague per dapil, the DPR
    threshold, open lists."""
    import orjson

    from streams.clickhouse.client import connect
    from streams.core.seats import LEGISLATIVE
    from streams.read.dapils import DapilError
    from streams.read.dapils import seats as read_seats
    from streams.read.report import print_seats

    if ballot not in LEGISLATIVE:  # the API's words (its contract's enum)
        fail(f"ballot: must be one of {', '.join(LEGISLATIVE)}")
    when = moment(as_of)
    settings = settings_from(clickhouse=clickhouse, data_dir=data_dir)
    try:
        data = read_seats(
            connect(settings, read_only=True), ballot, settings.dpr_threshold, dapil, when
        )
    except DapilError as exc:
        fail(str(exc))
    if json:
        typer.echo(orjson.dumps(data).decode())
    else:
        print_seats(data)


def changes(
    ballot: Annotated[str, typer.Option(help="PPWP, DPR, DPD, DPRD_PROV or DPRD_KAB")] = "PPWP",
    region: Annotated[str | None, typer.Option(help="only changes within this region")] = None,
    dapil: Annotated[
        str | None, typer.Option(help="only changes within this dapil (and --region, if given)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="after this cursor (a page's `next`) or moment")
    ] = None,
    until: Annotated[str | None, typer.Option(help="none after this moment")] = None,
    limit: Annotated[int, typer.Option(help="at most this many (1-10000)")] = 1000,
    newest_first: Annotated[
        bool, typer.Option("--newest-first", help="newest first, before --since")
    ] = False,
    json: JsonOpt = False,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The changes that moved a region's or dapil's totals, in the order they became visible, and
    why."""
    import orjson

    from streams.clickhouse.client import connect
    from streams.core.moments import MomentError
    from streams.read.changes import Cursor
    from streams.read.changes import changes as read_changes
    from streams.read.dapils import DapilError
    from streams.read.report import print_changes
    from streams.read.scopes import change_regions

    try:
        cursor = Cursor.parse(since) if since else None
    except MomentError as exc:
        fail(f"--since: {exc}")
    last = moment(until, "--until")
    client = connect(settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True)
    try:
        regions, within = change_regions(client, ballot, region, dapil)
        data = read_changes(client, ballot, regions, cursor, last, limit, newest_first, within)
    except (ValueError, DapilError) as exc:
        fail(str(exc))
    data.update(region=region, dapil=dapil)
    if json:
        typer.echo(orjson.dumps(data).decode())
    else:
        print_changes(data)


def export(
    out: Annotated[Path, typer.Option(help="directory to write the files and MANIFEST.json into")],
    ballot: Annotated[str, typer.Option(help="PPWP, DPR, DPD, DPRD_PROV or DPRD_KAB")] = "PPWP",
    level: Annotated[
        str, typer.Option(help="national|province|regency|district|village|tps")
    ] = "province",
    dapil: Annotated[bool, typer.Option("--dapil", help="per dapil instead of per region")] = False,
    format: Annotated[str, typer.Option("--format", help="csv, jsonl or parquet")] = "csv",
    as_of: AsOfOpt = None,
    clickhouse: ClickHouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Open data: regions, votes and parties files of a ballot at a level (or per dapil), as of a
    moment (default: now), with MANIFEST.json (SHA-256, rows, the moment, the registry)."""
    from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from streams.clickhouse.client import connect
    from streams.read.export import ExportError, ExportFailed, write_export
    from streams.read.export import check as check_export

    when = moment(as_of)
    try:
        check_export(ballot, "dapil" if dapil else level, format)
    except ExportError as exc:
        fail(str(exc))
    client = connect(settings_from(clickhouse=clickhouse, data_dir=data_dir), read_only=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), DownloadColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task("export", total=None)
        try:
            manifest = write_export(
                client,
                ballot,
                "dapil" if dapil else level,
                format,
                out,
                when,
                lambda name, size: progress.update(
                    task, description=f"export {name}", completed=size
                ),
            )
        except ExportError as exc:
            fail(str(exc))
        except ExportFailed as exc:
            fail(f"{exc}; the file it was writing is removed and no MANIFEST.json is written", 1)
    for file in manifest["files"]:
        typer.echo(f"{out / file['name']}: {file['rows']:,} rows, sha256 {file['sha256']}")
    typer.echo(f"{out / 'MANIFEST.json'}: as of {manifest['as_of']}")


def register(app: typer.Typer) -> None:
    for command in (results, seats, changes, export):
        app.command()(command)
