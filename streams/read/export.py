"""Open data: the results of a ballot at one level (or per dapil) as of one moment, as files anyone
can load, with a MANIFEST.json of their SHA-256 and row counts.

Three files, the same columns whatever the ballot or level (docs/time-travel.md, "Open data"):
  regions.<ext>  ballot, level, code, name, dapil, tps_reported, tps_total, registered, voters,
                 invalid, valid
  votes.<ext>    ballot, level, code, dapil, choice, choice_name, party, votes
  parties.<ext>  ballot, level, code, dapil, party, party_name, votes  (DPR, DPRD; else empty)
`votes` reports what the results report (core.seats.reported_votes): party totals above a TPS on
party ballots, candidates only within their dapil (a TPS, a dapil; DPD up to its province).

ClickHouse writes every file (FORMAT CSVWithNames, JSONEachRow or Parquet) from the change rows up
to the moment, and the bytes stream to the file as they come: memory stays bounded on both sides,
whatever the size. Every file of an export reads the same moment, so they agree with each other and
with `results --as-of` at it."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import urllib3
from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import moment_read
from streams.core.contract import BALLOTS
from streams.core.moments import moment_text, sql_moment
from streams.core.regions import LEVELS, NATIONAL
from streams.core.seats import LEGISLATIVE, PARTY_BALLOTS
from streams.read.totals import change_sums, dapil_statement

FORMATS = {"csv": "CSVWithNames", "jsonl": "JSONEachRow", "parquet": "Parquet"}
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
FILES = ("regions", "votes", "parties")
SCOPES = (*LEVELS, "dapil")
FILE_NAMES = tuple(f"{name}.{ext}" for name in FILES for ext in FORMATS) + ("MANIFEST.json",)
CHUNK = 1 << 20
# Aggregation past this spills to disk instead of growing (a national TPS level of DPR is 120M
# votes); an error midway breaks the body, never becomes a row of JSONEachRow (ClickHouse 24.11+).
SETTINGS = {
    "max_bytes_before_external_group_by": 1 << 30,
    "optimize_aggregation_in_order": 1,
    "http_write_exception_in_output_format": 0,
}


class ExportError(ValueError):
    """An export that cannot be made: the message says why; `status` 400 (malformed) or 404 (none
    such)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check(ballot: str, scope: str, fmt: str) -> None:
    if ballot not in BALLOTS:
        raise ExportError(f"ballot: must be one of {', '.join(BALLOTS)}")
    if scope not in SCOPES:
        raise ExportError(f"level: must be one of {', '.join(SCOPES)}")
    if scope == "dapil" and ballot not in LEGISLATIVE:
        raise ExportError(f"dapils are contests of {', '.join(LEGISLATIVE)}, not {ballot}", 404)
    if fmt not in FORMATS:
        raise ExportError(f"format: must be one of {', '.join(FORMATS)}")


def _members() -> str:
    return (
        "SELECT dapil, arrayJoin(regions) AS region FROM registry_contests FINAL WHERE ballot = "
        "{b:String}"
    )


def _dapil_of(codes: str) -> str:
    """code -> the dapil holding it: the contest one of whose regions is a prefix of the code (or
    it)."""
    prefixes = (
        "arrayDistinct([substring(c, 1, 2), substring(c, 1, 4), substring(c, 1, 6), substring(c, "
        "1, 10), c])"
    )
    return (
        f"SELECT x.c AS code, any(m.dapil) AS dapil FROM (SELECT c, arrayJoin({prefixes}) AS p "
        f"FROM ({codes})) AS x "
        f"INNER JOIN ({_members()}) AS m ON x.p = m.region GROUP BY x.c"
    )


def _sums(client: Client, ballot: str, scope: str, as_of: datetime) -> tuple[str, dict]:
    """The totals per code at the moment (columns code, votes, tps_reported, invalid, voters,
    read_at)."""
    if scope == "dapil":
        return dapil_statement(client, ballot, None, as_of)
    params = {"b": ballot, "ballot": ballot, "as_of": sql_moment(as_of)}
    if scope == "tps":  # grouped in the table's own order: streams, never holds 820k maps at once
        return f"{change_sums('tps', as_of, code='region')} GROUP BY ballot, level, region", params
    return f"{change_sums(scope, as_of)} GROUP BY code", params


def _codes(scope: str) -> str:
    """Every code the regions file lists (as column c)."""
    if scope == "dapil":
        return "SELECT dapil AS c FROM registry_contests FINAL WHERE ballot = {b:String}"
    if scope == "tps":
        return "SELECT tps AS c FROM registry_tps FINAL"
    return (
        "SELECT region AS c FROM region_tps_total FINAL WHERE ballot = {b:String} AND level = "
        "{scope:String}"
    )


def _names() -> tuple[str, str]:
    """(dapil, choice) -> name, and choice -> name where it is the same in every dapil (pairs,
    parties)."""
    pairs = (
        "FROM registry_contests FINAL ARRAY JOIN arrayZip(choices, choice_names) AS pair WHERE "
        "ballot = {b:String}"
    )
    return (
        f"SELECT dapil, pair.1 AS choice, pair.2 AS name {pairs}",
        f"SELECT pair.1 AS choice, any(pair.2) AS name {pairs} GROUP BY choice HAVING "
        "uniqExact(pair.2) = 1",
    )


def _regions_sql(head: str, sums: str, scope: str) -> str:
    """The regions file's SELECT: each region's name, dapil, TPS reported of its total, DPT,
    voters, invalid and valid votes (a TPS's own, or a region's with its denominators)."""
    if scope == "tps":
        body = (
            f"{head}, s.code AS code, concat('TPS ', substring(s.code, 11, 3)) AS name, "
            "d.dapil AS dapil, "
            "s.tps_reported AS tps_reported, toUInt32(1) AS tps_total, toUInt64(r.dpt) AS "
            "registered, "
            "s.voters AS voters, s.invalid AS invalid, arraySum(mapValues(s.votes)) AS valid "
            f"FROM ({sums}) AS s "
            "LEFT JOIN (SELECT tps, dpt FROM registry_tps FINAL) AS r ON r.tps = s.code "
            f"LEFT JOIN ({_dapil_of('SELECT code AS c FROM (' + sums + ')')}) AS d ON d.code = "
            "s.code "
            "WHERE s.tps_reported > 0"
        )
    else:
        names = (
            "SELECT dapil AS code, name FROM registry_contests FINAL WHERE ballot = {b:String}"
            if scope == "dapil"
            else "SELECT code, name FROM regions FINAL WHERE level = {scope:String}"
        )
        denominators = (
            "SELECT m.dapil AS code, sum(t.tps_total) AS tps_total, sum(t.dpt_total) AS "
            "registered "
            f"FROM region_tps_total AS t FINAL INNER JOIN ({_members()}) AS m ON t.region = "
            "m.region "
            "WHERE t.ballot = {b:String} GROUP BY m.dapil"
            if scope == "dapil"
            else "SELECT region AS code, tps_total, dpt_total AS registered "
            "FROM region_tps_total FINAL WHERE ballot = {b:String} AND level = {scope:String}"
        )
        dapil = "k.c" if scope == "dapil" else "d.dapil"
        body = (
            f"{head}, k.c AS code, n.name AS name, {dapil} AS dapil, s.tps_reported AS "
            "tps_reported, "
            "toUInt32(t.tps_total) AS tps_total, toUInt64(t.registered) AS registered, "
            "s.voters AS voters, "
            "s.invalid AS invalid, arraySum(mapValues(s.votes)) AS valid FROM "
            f"({_codes(scope)}) AS k "
            f"LEFT JOIN ({names}) AS n ON n.code = k.c LEFT JOIN ({denominators}) AS t ON "
            "t.code = k.c "
            f"LEFT JOIN ({sums}) AS s ON s.code = k.c LEFT JOIN ({_dapil_of(_codes(scope))}) "
            "AS d ON d.code = k.c"
        )
    return body


def statement(
    client: Client, ballot: str, scope: str, file: str, as_of: datetime
) -> tuple[str, dict, dict]:
    """The SELECT of one file, its parameters and its settings."""
    sums, params = _sums(client, ballot, scope, as_of)
    params = {**params, "b": ballot, "scope": scope}
    head = "SELECT {b:String} AS ballot, {scope:String} AS level"
    ordered = "" if scope == "tps" else " ORDER BY code"
    if file == "regions":
        return _regions_sql(head, sums, scope) + ordered, params, SETTINGS
    per_dapil, shared = _names()
    votes = (
        f"SELECT s.code AS code, v.1 AS choice, v.2 AS votes FROM ({sums}) AS s "
        "ARRAY JOIN arrayZip(mapKeys(s.votes), mapValues(s.votes)) AS v WHERE v.2 != 0"
    )
    if scope not in ("tps", "dapil") and ballot in PARTY_BALLOTS:  # party totals above a TPS
        votes = (
            f"SELECT code, substring(choice, 1, 3) AS choice, sum(votes) AS votes FROM ({votes}) "
            "WHERE startsWith(choice, 'P') GROUP BY code, choice"
        )
    if ballot == "DPD" and scope == "national":  # a DPD candidate is one in a province only
        votes += " LIMIT 0"
    dapil = "v.code" if scope == "dapil" else "d.dapil"
    rows = (
        f"SELECT v.code AS code, {dapil} AS dapil, v.choice AS choice, "
        "if(dn.name != '', dn.name, bn.name) AS choice_name, "
        "if(startsWith(v.choice, 'P'), substring(v.choice, 1, 3), '') AS party, v.votes AS votes "
        f"FROM ({votes}) AS v LEFT JOIN ({_dapil_of('SELECT code AS c FROM (' + sums + ')')}) AS d "
        "ON d.code = v.code "
        f"LEFT JOIN ({per_dapil}) AS dn ON dn.dapil = {dapil} AND dn.choice = v.choice "
        f"LEFT JOIN ({shared}) AS bn ON bn.choice = v.choice"
    )
    if file == "votes":
        columns = "code, dapil, choice, choice_name, party, votes"
        return (
            f"{head}, {columns} FROM ({rows}){' ORDER BY code, choice' if ordered else ''}",
            params,
            SETTINGS,
        )
    return (
        f"{head}, code, dapil, p.party AS party, any(pn.name) AS party_name, sum(p.votes) AS votes "
        f"FROM ({rows}) AS p "
        f"LEFT JOIN ({shared}) AS pn ON pn.choice = p.party WHERE p.party != '' GROUP BY code, "
        "dapil, party" + (" ORDER BY code, party" if ordered else ""),
        params,
        SETTINGS,
    )


def stream(
    client: Client, ballot: str, scope: str, file: str, fmt: str, as_of: datetime
) -> Iterator[bytes]:
    """One file's bytes as ClickHouse writes them (a `stream-` query: see embedded.chdb_http);
    raises ExportFailed, never yields an error's text, if ClickHouse fails once the file has
    begun."""
    sql, params, settings = statement(client, ballot, scope, file, as_of)
    source = client.raw_stream(
        sql,
        parameters=params,
        settings={**settings, "query_id": f"stream-{uuid.uuid4()}"},
        fmt=FORMATS[fmt],
    )
    try:
        yield from whole(source.read, source.headers.get("X-ClickHouse-Exception-Tag"))
    finally:
        source.close()


class ExportFailed(RuntimeError):
    """ClickHouse failed after the file had begun: the bytes so far are not the file."""


def whole(read: Callable[[int], bytes], tag: str | None) -> Iterator[bytes]:
    """The body's chunks as `read` gives them, but raising ExportFailed where ClickHouse (25.11+)
    marks an error with the response's exception tag or the body ends cut (no terminating chunk).
    The last bytes of each chunk are held back until the next, so a marker split between two is
    still seen (and the line break that opens the block is never passed on as data)."""
    marker = b"__exception__\r\n" + tag.encode() if tag else b""
    held = b""
    try:
        while chunk := read(CHUNK):
            data = held + chunk
            at = data.find(marker) if marker else -1
            if at >= 0:
                raise ExportFailed(_error_text(_rest(data[at + len(marker) :], read), tag))
            # and the CRLF before it
            cut = max(len(data) - len(marker) - 2, 0) if marker else len(data)
            ready, held = data[:cut], data[cut:]
            if ready:
                yield ready
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:
        raise ExportFailed(
            f"ClickHouse failed midway: the file ended before its end ({type(exc).__name__})"
        ) from None
    if held:
        yield held


def _rest(block: bytes, read: Callable[[int], bytes]) -> bytes:
    """An error block read to its closing marker (at most 64 KiB; the cut after it is expected)."""
    with contextlib.suppress(OSError, http.client.HTTPException, urllib3.exceptions.HTTPError):
        while b"__exception__" not in block and len(block) < 1 << 16 and (more := read(CHUNK)):
            block += more
    return block


def _error_text(block: bytes, tag: str | None) -> str:
    """The message of an exception block: `\r\n<message>\n<length> <tag>\r\n__exception__`."""
    text = block.lstrip(b"\r\n")
    end = text.rfind(f" {tag}".encode())
    if end > 0:
        text = text[: text.rfind(b"\n", 0, end)]
    return "ClickHouse failed midway: " + text.decode("utf-8", "replace").strip()[:500]


def registry_version(client: Client) -> dict:
    """Which registry the export names regions and choices from: how many loads, the last one's
    time."""
    loads, last = client.query("SELECT count(), max(loaded_at) FROM registry_loads").result_rows[0]
    return {"loads": int(loads), "loaded_at": moment_text(last) if loads else None}


def pin(client: Client, as_of: datetime | None) -> datetime:
    """The export's moment: the one asked, or now (read on the server, so the files read no later
    write)."""
    if as_of is not None:
        return as_of
    now = client.query("SELECT now64(6, 'UTC')", settings=moment_read()).result_rows[0][0]
    return datetime.fromisoformat(moment_text(now).replace("Z", "+00:00"))


def write_export(
    client: Client,
    ballot: str,
    scope: str,
    fmt: str,
    out: Path,
    as_of: datetime | None = None,
    progress: Callable[[str, int], object] | None = None,
) -> dict:
    """Write the three files and MANIFEST.json into `out`; return the manifest. `progress` hears
    each file's name and how many bytes of it are written so far. A file ClickHouse fails midway is
    removed, and ExportFailed raised before any manifest is written."""
    check(ballot, scope, fmt)
    moment = pin(client, as_of)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in FILES:
        path = out / f"{name}.{fmt}"
        try:
            with path.open("wb") as sink:
                entry, lines = _summed(
                    path.name,
                    stream(client, ballot, scope, name, fmt, moment),
                    sink.write,
                    progress,
                )
        except ExportFailed:
            path.unlink()  # a cut file is no file: never left to pass for one
            raise
        rows = (
            _parquet_rows(path)
            if fmt == "parquet"
            else _rows(client, ballot, scope, name, fmt, moment, lines)
        )
        files.append({**entry, "rows": rows})
    manifest = _manifest(client, ballot, scope, fmt, moment, files)
    (out / "MANIFEST.json").write_bytes(_json_bytes(manifest))
    return manifest


def _summed(
    name: str,
    chunks: Iterator[bytes],
    write: Callable[[bytes], object] = lambda chunk: None,
    progress: Callable[[str, int], object] | None = None,
) -> tuple[dict, int]:
    """A file's manifest entry (name, SHA-256, bytes) and its line count, from its chunks as they
    pass."""
    digest, size, lines = hashlib.sha256(), 0, 0
    for chunk in chunks:
        write(chunk)
        digest.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
        if progress is not None:
            progress(name, size)
    return {"name": name, "sha256": digest.hexdigest(), "bytes": size}, lines


def _rows(
    client: Client, ballot: str, scope: str, name: str, fmt: str, moment: datetime, lines: int
) -> int:
    if fmt == "csv":
        # the header; a value never holds a line break (codes, names, numbers)
        return max(lines - 1, 0)
    if fmt == "jsonl":
        return lines
    sql, params, settings = statement(client, ballot, scope, name, moment)
    return int(
        client.query(
            f"SELECT count() FROM ({sql})", parameters=params, settings=settings
        ).result_rows[0][0]
    )


def _parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer (chDB in this process: it reads the metadata
    only)."""
    import chdb

    quoted = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return int(
        chdb.query(f"SELECT count() FROM file('{quoted}', 'Parquet')", "CSV")
        .bytes()
        .decode()
        .strip()
    )


def _manifest(
    client: Client, ballot: str, scope: str, fmt: str, moment: datetime, files: list[dict]
) -> dict:
    return {
        "ballot": ballot,
        "level": scope,
        "format": fmt,
        "as_of": moment_text(moment),
        "registry": registry_version(client),
        "files": files,
        "columns": COLUMNS,
        "national_code": NATIONAL,
    }


def manifest_only(
    client: Client, ballot: str, scope: str, fmt: str, as_of: datetime | None
) -> dict:
    """The manifest of an export without writing it anywhere (the API's MANIFEST.json): each file is
    streamed through the hash."""
    check(ballot, scope, fmt)
    moment = pin(client, as_of)
    files = []
    for name in FILES:
        entry, lines = _summed(f"{name}.{fmt}", stream(client, ballot, scope, name, fmt, moment))
        files.append({**entry, "rows": _rows(client, ballot, scope, name, fmt, moment, lines)})
    return _manifest(client, ballot, scope, fmt, moment, files)


def _json_bytes(value: object) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


COLUMNS = {
    "regions": {
        "ballot": "PPWP, DPR, DPD, DPRD_PROV or DPRD_KAB",
        "level": "national, province, regency, district, village, tps or dapil",
        "code": "region code (ID, 2, 4, 6, 10 or 13 digits) or dapil",
        "name": "region, TPS or dapil name",
        "dapil": "the dapil holding the region ('' where it spans several)",
        "tps_reported": "TPS counted by the moment",
        "tps_total": "TPS holding the ballot there",
        "registered": "registered voters (DPT) of those TPS",
        "voters": "voters who used a ballot, summed over counted TPS",
        "invalid": "invalid ballots",
        "valid": "valid votes (the sum of votes)",
    },
    "votes": {
        "choice": "pair number (PPWP), party (P01) or candidate (P01.03), DPD candidate",
        "choice_name": "its name ('' where a number names different people in different dapils)",
        "party": "the party the choice counts for ('' for pairs and DPD)",
        "votes": "votes by the moment",
    },
    "parties": {
        "party": "party code",
        "party_name": "party name",
        "votes": "its own column plus its candidates'",
    },
}
