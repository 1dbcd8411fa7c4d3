"""`tally serve`: the read side over HTTP (JSON), for dashboards, auditors and citizens.

Reads ClickHouse only, through clickhouse-connect (embedded: through `tally clickhouse`); many API
processes may run beside the workers. Every answer is built from small indexed queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import clickhouse_connect
import orjson
from aiohttp import web
from clickhouse_connect.driver.client import Client

from streams.clickhouse import audit
from streams.core.contract import BALLOTS
from streams.core.moments import MomentError, moment_text, parse_moment, sql_moment
from streams.core.regions import LEVELS, digits
from streams.core.seats import LEGISLATIVE
from streams.embedded.servers import clickhouse_dsn, read_only
from streams.read import slow_clients
from streams.read.changes import DEFAULT_LIMIT, Cursor, changes
from streams.read.dapils import DapilError, ballot_view, dapil_list, dapil_of, seats_of
from streams.read.export import FILE_NAMES as EXPORT_FILE_NAMES
from streams.read.export import FILES as EXPORT_FILES
from streams.read.export import MEDIA, ExportError, ExportFailed, manifest_only, pin, stream
from streams.read.export import check as check_export
from streams.read.log_view import checkpoints as log_checkpoints
from streams.read.log_view import consistency as log_consistency
from streams.read.log_view import inclusion as log_inclusion
from streams.read.log_view import leaves as log_leaves
from streams.read.metrics import ApiMetrics
from streams.read.openapi import OPENAPI
from streams.read.results import choice_names, results
from streams.read.scopes import change_regions, check_ballot, check_level, check_region
from streams.settings import Settings

log = logging.getLogger("tally.api")
PAGE = Path(__file__).resolve().parent / "web" / "index.html"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def enrich(data: dict) -> dict:
    """Add the derived figures a reader wants: percent reported, valid votes, turnout (voters over the
    DPT of the TPS that reported)."""
    for region in data["regions"]:
        valid = sum(region["votes"].values())
        region["valid"] = valid
        region["percent_reported"] = round(100 * region["tps_reported"] / region["tps_total"], 2) if region["tps_total"] else 0.0
        # Over the TPS that reported, never over all of them: a third reported is not a third's turnout.
        basis = region.get("registered_reported", 0)
        region["turnout"] = round(100 * region["voters"] / basis, 2) if basis else None
    return data


def region_results(client: Client, ballot: str, level: str | None, region: str | None, as_of: datetime | None = None) -> dict:
    try:
        check_level(level)
        check_ballot(ballot)
        check_region(client, region)
        data = enrich(results(client, ballot, level, region, as_of))
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    data["names"] = choice_names(client, ballot)
    return data


def moment_param(request: web.Request, name: str = "as_of") -> datetime | None:
    """A moment from the query string (None if absent), or a 400 saying what is accepted."""
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse_moment(text)
    except MomentError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def check_request(request: web.Request, path: str) -> None:
    """Every parameter against the OpenAPI document, so the document is the contract and not a wish:
    a parameter the endpoint does not take (a misspelt as_of would otherwise answer the current totals
    as if they were the past), a missing required one, or a value outside its enum, pattern or range
    is a 400 naming it."""
    parameters = OPENAPI["paths"][path]["get"].get("parameters", [])
    allowed = [p["name"] for p in parameters if p["in"] == "query"]
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown parameter {', '.join(unknown)}; this endpoint takes {', '.join(allowed) or 'none'}")
    for parameter in parameters:
        name = parameter["name"]
        value = request.query.get(name) if parameter["in"] == "query" else request.match_info.get(name)
        if value is None:
            if parameter.get("required"):
                raise ApiError(400, f"{name} is required")
            continue
        problem = violation(value, parameter["schema"])
        if problem:
            raise ApiError(400, f"{name}: {problem}")


def violation(value: str, schema: dict) -> str | None:
    """What is wrong with a parameter's text under its schema (the subset the document uses), or None."""
    if "anyOf" in schema:
        problems = [violation(value, option) for option in schema["anyOf"]]
        return None if None in problems else " or ".join(p for p in problems if p)
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(str, schema['enum']))}"
    if schema.get("type") == "integer":
        if not digits(value):
            return "must be a whole number (ASCII digits, at most 18)"
        if not schema.get("minimum", 0) <= int(value) <= schema.get("maximum", int(value)):
            return f"must be between {schema.get('minimum', 0)} and {schema.get('maximum')}"
    if "pattern" in schema and not re.fullmatch(schema["pattern"].strip("^$"), value):
        return f"{value[:40]!r} does not match {schema['pattern']}"
    if schema.get("format") == "date-time":
        try:
            parse_moment(value)
        except MomentError as exc:
            return str(exc)
    return None


def dapil_view(build: Callable[[], dict]) -> dict:
    """A dapil or seats answer, its errors as API errors."""
    try:
        return build()
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def tps_detail(client: Client, code: str, ballot: str | None = None) -> dict:
    if not (len(code) == 13 and digits(code, 13)):
        raise ApiError(400, "a TPS code is 13 digits")
    if ballot and ballot not in BALLOTS:
        raise ApiError(400, f"ballot: must be one of {', '.join(BALLOTS)}")
    applied = list(
        client.query(
            "SELECT ballot, revision, event_id, gateway, submitted_at, votes, invalid, voters, registered, flags "
            "FROM tally_current FINAL WHERE tps = {c:String} ORDER BY ballot",
            parameters={"c": code},
        ).named_results()
    )
    events = audit.history(client, code, ballot)
    dpt = client.query("SELECT dpt FROM registry_tps WHERE tps = {c:String}", parameters={"c": code}).result_rows
    if not applied and not events and not dpt:
        raise ApiError(404, f"nothing is known of TPS {code}")
    # A candidate's number names a person only within a dapil: each tally says which one it is.
    dapils = dict(
        client.query(
            "SELECT ballot, dapil FROM registry_contests FINAL "
            "WHERE arrayExists(r -> r = 'ID' OR startsWith({c:String}, r), regions)",
            parameters={"c": code},
        ).result_rows
    )
    return {
        "tps": code,
        "dpt": dpt[0][0] if dpt else None,
        "tallies": [{**row, "dapil": dapils.get(row["ballot"]), "votes": dict(sorted(row["votes"].items()))} for row in applied],
        "history": events,
    }


def anomalies(client: Client, level: str | None, region: str | None, as_of: datetime | None = None) -> dict:
    """Flagged and rejected events per region: every decision made by `as_of` (all, if None)."""
    level = level or "province"
    if level not in LEVELS[:-1]:
        raise ApiError(400, f"level: must be one of {', '.join(LEVELS[:-1])}")
    try:
        prefix = check_region(client, region)
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    width = {"national": 0, "province": 2, "regency": 4, "district": 6, "village": 10}[level]
    region_expr = "'ID'" if width == 0 else f"substring(tps, 1, {width})"
    when = "" if as_of is None else " AND decided_at <= {t:DateTime64(6, 'UTC')}"
    rows = client.query(
        f"SELECT {region_expr} AS region, countIf(decision = 'rejected') AS rejected, countIf(notEmpty(flags)) AS flagged, "
        "sumMap(reasons, arrayMap(r -> toUInt64(1), reasons)) AS by_reason, "
        "sumMap(flags, arrayMap(f -> toUInt64(1), flags)) AS by_flag "
        "FROM (SELECT tps, decision, reasons, flags FROM tally_decisions FINAL "
        f"WHERE startsWith(tps, {{p:String}}) AND tps != ''{when}) GROUP BY region ORDER BY region",
        parameters={"p": prefix, **({} if as_of is None else {"t": sql_moment(as_of)})},
    ).result_rows
    return {
        "level": level,
        "as_of": None if as_of is None else moment_text(as_of),
        "regions": [
            {
                "code": code,
                "rejected": rejected,
                "flagged": flagged,
                "reasons": dict(zip(*by_reason, strict=True)) if by_reason else {},
                "flags": dict(zip(*by_flag, strict=True)) if by_flag else {},
            }
            for code, rejected, flagged, by_reason, by_flag in rows
        ],
    }


EXPORTS_AT_ONCE = 4  # exports streamed at once by one API process
EXPORT_RETRY_S = 5  # what a 503 tells the reader to wait (Retry-After)
WRITE_STALL_S = 30.0  # a reader that takes no piece of an export for this long is given up
CACHE_BYTES = 256 << 20  # of answers the API keeps; an answer larger than this is kept alone


class ResponseCache:
    """Answers kept `ttl` seconds; after that the old answer is served while one refresh runs.

    Totals move once per worker batch; a reader polling every second or two sees them about `ttl`
    later, and 50 readers of the same view cost one set of queries, not 50, and never wait behind
    other readers' queries once the view has been computed.

    A view that is costly to build is kept longer: at least `cost_factor` times what its last build
    took, so that no view keeps ClickHouse busy more than 1/cost_factor of the time, whatever the
    readers do (the seats of 2,325 DPRD kab/kota dapils take ~4 s at national scale, and ClickHouse
    is shared with the workers' inserts)."""

    def __init__(
        self,
        ttl: float,
        cost_factor: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = CACHE_BYTES,
        size_of: Callable[[dict], int] = lambda body: len(orjson.dumps(body)),
    ) -> None:
        self.ttl = ttl
        self.cost_factor = cost_factor
        self.clock = clock  # a parameter so that the policy can be tested without a sleeping thread
        self.entries: dict[str, tuple[float, dict]] = {}
        self.refreshing: dict[str, asyncio.Task] = {}
        # Bounded in bytes, the oldest answers going first: readers choose the keys, so their number and
        # size are theirs to grow, not the server's memory.
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.sizes: dict[str, int] = {}
        self.bytes = 0

    async def get(self, key: str, build: Callable[[], dict]) -> dict:
        hit = self.entries.get(key)
        if hit is not None:
            if hit[0] <= self.clock() and key not in self.refreshing:
                self.refreshing[key] = asyncio.create_task(self._refresh(key, build))
            return hit[1]
        task = self.refreshing.get(key) or self.refreshing.setdefault(key, asyncio.create_task(self._refresh(key, build)))
        await task
        return self.entries[key][1]

    async def _refresh(self, key: str, build: Callable[[], dict]) -> None:
        try:
            started = self.clock()
            body = await asyncio.to_thread(build)
            finished = self.clock()
            size = self.size_of(body)
            self._forget(key)
            while self.entries and self.bytes + size > self.max_bytes:
                self._forget(next(iter(self.entries)))
            self.entries[key] = (finished + max(self.ttl, self.cost_factor * (finished - started)), body)
            self.sizes[key] = size
            self.bytes += size
        finally:
            self.refreshing.pop(key, None)

    def _forget(self, key: str) -> None:
        self.entries.pop(key, None)
        self.bytes -= self.sizes.pop(key, 0)


def cache_key(path: str, query: Mapping[str, str]) -> str:
    """One entry per question, however it is spelled: parameters in order, whole numbers as numbers
    (`start=0007` is `start=7`)."""
    normal = sorted((name, str(int(value)) if digits(value, 100) else value) for name, value in query.items())
    return path + "?" + "&".join(f"{name}={value}" for name, value in normal)


def results_key(ballot: str, level: str | None, region: str | None, as_of: datetime | None = None) -> str:
    """One cache entry per view, however its query string is spelled."""
    return f"results:{ballot}:{level or ''}:{region or ''}:{as_of or ''}"


def make_app(settings: Settings, cache_ttl: float = 1.0) -> web.Application:
    # No HTTP session: requests of many readers run side by side on one client.
    client = clickhouse_connect.get_client(dsn=read_only(settings, clickhouse_dsn(settings)), autogenerate_session_id=False)

    cache = ResponseCache(cache_ttl)
    # Exports stream for as long as their readers read: a few at a time, on threads of their own, and
    # past that a 503 at once, so that a flood of them never holds what every other answer needs.
    exports = asyncio.Semaphore(EXPORTS_AT_ONCE)
    export_threads = ThreadPoolExecutor(EXPORTS_AT_ONCE, thread_name_prefix="export")
    threshold = settings.dpr_threshold

    def respond(answer: Callable[[web.Request], Awaitable[dict]]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await answer(request)
            except ApiError as exc:
                return json_response({"error": str(exc)}, exc.status)
            except Exception as exc:  # noqa: BLE001 - a reader gets JSON, never a stack trace
                log.exception("request %s failed", request.path_qs)
                return json_response({"error": f"internal error: {type(exc).__name__}"}, 500)
            return json_response(body)

        return handler

    def endpoint(
        build: Callable[[web.Request], dict], key: Callable[[web.Request], str] = lambda r: cache_key(r.path, r.query)
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        return respond(lambda r: cache.get(key(r), lambda: build(r)))

    async def ballot_view_of(ballot: str, what: str, as_of: datetime | None = None, status: int = 400) -> dict:
        """The ballot's shared dapil view (contests, dapil totals, seats), one cache entry a ballot (and
        moment): every dapil page and seats answer of the ballot comes from it, so none waits for its own
        queries."""
        if ballot not in LEGISLATIVE:
            raise ApiError(status, f"{what} {', '.join(LEGISLATIVE)}, not {ballot}")
        return await cache.get(
            f"ballot:{ballot}:{as_of or ''}", lambda: dapil_view(lambda: ballot_view(client, ballot, threshold, as_of=as_of))
        )

    async def one_dapil(view: dict, dapil: str) -> dict:
        if dapil in view["contests"]:  # no I/O: answered on the loop
            return dapil_view(lambda: dapil_of(client, view, dapil))
        return await asyncio.to_thread(dapil_view, lambda: dapil_of(client, view, dapil))  # says why it is unknown

    async def warm(_: web.Application) -> None:
        """Compute the views every dashboard opens with before readers ask: national and province
        results and each province's children, per ballot held. The first reader of a view would
        otherwise wait behind every other query in the ClickHouse queue."""
        try:
            ballots = await asyncio.to_thread(
                lambda: [b for (b,) in client.query("SELECT DISTINCT ballot FROM region_tps_total").result_rows]
            )
            provinces = await asyncio.to_thread(
                lambda: [c for (c,) in client.query("SELECT code FROM regions WHERE level = 'province'").result_rows]
            )
        except Exception:  # noqa: BLE001 - a missing schema or registry only means nothing to warm
            log.warning("no views warmed: the registry could not be read", exc_info=True)
            return
        for ballot in sorted(ballots, key=lambda b: b != "PPWP"):
            views = [("national", None), ("province", None)] + [(None, code) for code in provinces]
            for level, region in views:
                with contextlib.suppress(Exception):  # an empty ballot or region is not worth a failure
                    await cache.get(
                        results_key(ballot, level, region), lambda b=ballot, lv=level, r=region: region_results(client, b, lv, r)
                    )
            if ballot in LEGISLATIVE:  # the dapils and seats every legislative page opens with
                with contextlib.suppress(Exception):
                    await ballot_view_of(ballot, "")
        log.info("warmed %d views", len(cache.entries))

    async def start_warming(app: web.Application) -> None:
        app["warming"] = asyncio.create_task(warm(app))

    metrics = ApiMetrics()
    app = web.Application(middlewares=[metrics.middleware])
    app.on_startup.append(start_warming)

    async def results_answer(r: web.Request) -> dict:
        check_request(r, "/api/results")
        ballot, level, region, dapil = (
            r.query.get("ballot", "PPWP"),
            r.query.get("level"),
            r.query.get("region"),
            r.query.get("dapil"),
        )
        as_of = moment_param(r)
        if dapil:  # the document says so: level and region are not used then
            # No dapil of PPWP exists: not found, like an unknown dapil of a legislative ballot.
            return await one_dapil(await ballot_view_of(ballot, "dapils are contests of", as_of, 404), dapil)
        return await cache.get(
            results_key(ballot, level, region, as_of), lambda: region_results(client, ballot, level, region, as_of)
        )

    async def seats_answer(r: web.Request) -> dict:
        check_request(r, "/api/seats")
        view = await ballot_view_of(r.query.get("ballot", ""), "seats are elected on", moment_param(r))
        dapil = r.query.get("dapil")
        if dapil:
            await one_dapil(view, dapil)  # an unknown dapil, or one of another ballot, is an error
        return seats_of(view, dapil)

    def changes_answer(r: web.Request) -> dict:
        check_request(r, "/api/changes")
        ballot = r.query.get("ballot", "PPWP")
        order = r.query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ApiError(400, "order must be asc or desc")
        try:
            since = Cursor.parse(r.query["since"]) if "since" in r.query else None
        except MomentError as exc:
            raise ApiError(400, f"since: {exc}") from None
        limit = r.query.get("limit", str(DEFAULT_LIMIT))
        if not digits(limit):
            raise ApiError(400, "limit must be a whole number")
        try:
            regions, within = change_regions(client, ballot, r.query.get("region"), r.query.get("dapil"))
            data = changes(client, ballot, regions, since, moment_param(r, "until"), int(limit), order == "desc", within)
        except DapilError as exc:
            raise ApiError(exc.status, str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return {**data, "region": r.query.get("region"), "dapil": r.query.get("dapil")}

    async def export_answer(r: web.Request) -> web.StreamResponse:
        try:
            check_request(r, "/api/export/{ballot}/{scope}/{file}")
            ballot, scope, file = r.match_info["ballot"], r.match_info["scope"], r.match_info["file"]
            as_of = moment_param(r)
            if file == "MANIFEST.json":
                fmt = r.query.get("format", "csv")
                check_export(ballot, scope, fmt)
                return json_response(await asyncio.to_thread(manifest_only, client, ballot, scope, fmt, as_of))
            name, _, fmt = file.partition(".")
            if name not in EXPORT_FILES:
                raise ApiError(404, f"no file {file}: the files are {', '.join(EXPORT_FILE_NAMES)}")
            check_export(ballot, scope, fmt)
            if exports.locked():
                raise ApiError(503, f"{EXPORTS_AT_ONCE} exports are being streamed: try again in {EXPORT_RETRY_S} s")
            moment = await asyncio.to_thread(pin, client, as_of)
        except ExportFailed as exc:
            log.warning("manifest of %s failed: %s", r.path_qs, exc)
            exc = ApiError(503, f"ClickHouse failed while the files were read: try again in {EXPORT_RETRY_S} s")
            response = json_response({"error": str(exc)}, exc.status)
            response.headers["Retry-After"] = str(EXPORT_RETRY_S)
            return response
        except ApiError as exc:
            response = json_response({"error": str(exc)}, exc.status)
            if exc.status == 503:
                response.headers["Retry-After"] = str(EXPORT_RETRY_S)
            return response
        except ExportError as exc:
            return json_response({"error": str(exc)}, exc.status)
        async with exports:
            return await stream_export(r, ballot, scope, name, fmt, moment)

    async def stream_export(r: web.Request, ballot: str, scope: str, name: str, fmt: str, moment: datetime) -> web.StreamResponse:
        """The file, chunk by chunk as ClickHouse sends it, read on the exports' own threads: a reader
        that reads slowly holds one of them, never a thread the other answers need, and one that takes
        nothing for WRITE_STALL_S is given up. If ClickHouse fails once the file has begun, the
        connection is cut before the terminating chunk: the reader's client reports a body that ended
        early, and no byte of the error is in the file (so neither it nor its manifest passes as whole)."""
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(
            headers={
                "Content-Type": MEDIA[fmt],
                "Content-Disposition": f'attachment; filename="{ballot}-{scope}-{name}.{fmt}"',
                "X-Tally-As-Of": moment_text(moment),
            }
        )
        await response.prepare(r)
        chunks = stream(client, ballot, scope, name, fmt, moment)
        try:
            while chunk := await loop.run_in_executor(export_threads, next, chunks, b""):
                await asyncio.wait_for(response.write(chunk), WRITE_STALL_S)
        except (ExportFailed, TimeoutError, ConnectionError) as exc:
            log.warning("export %s cut: %s", r.path_qs, exc or type(exc).__name__)
            if r.transport is not None:
                r.transport.abort()
            return response
        finally:
            await loop.run_in_executor(export_threads, chunks.close)
        await response.write_eof()
        return response

    def anomalies_answer(r: web.Request) -> dict:
        check_request(r, "/api/anomalies")
        return anomalies(client, r.query.get("level"), r.query.get("region"), moment_param(r))

    def tps_answer(r: web.Request) -> dict:
        check_request(r, "/api/tps/{code}")
        return tps_detail(client, r.match_info["code"], r.query.get("ballot"))

    def dapils_answer(r: web.Request) -> dict:
        check_request(r, "/api/dapils")
        return dapil_view(lambda: dapil_list(client, r.query.get("ballot", ""), r.query.get("region")))

    app.router.add_get("/api/results", respond(results_answer))
    app.router.add_get("/api/seats", respond(seats_answer))
    app.router.add_get("/api/dapils", endpoint(dapils_answer))
    app.router.add_get("/api/tps/{code}", endpoint(tps_answer))
    app.router.add_get("/api/anomalies", endpoint(anomalies_answer))
    app.router.add_get("/api/changes", endpoint(changes_answer))
    app.router.add_get("/api/export/{ballot}/{scope}/{file}", export_answer)

    def log_answer(path: str, build: Callable[[web.Request], dict]) -> Callable[[web.Request], dict]:
        def answer(r: web.Request) -> dict:
            check_request(r, path)
            try:
                return build(r)
            except DapilError as exc:
                raise ApiError(exc.status, str(exc)) from None

        return answer

    app.router.add_get("/api/log/checkpoints", endpoint(log_answer("/api/log/checkpoints", lambda r: log_checkpoints(client))))
    app.router.add_get(
        "/api/log/proof",
        endpoint(
            log_answer(
                "/api/log/proof",
                lambda r: log_inclusion(
                    client, r.query["tps"], r.query["ballot"], int(r.query["checkpoint"]) if "checkpoint" in r.query else None
                ),
            )
        ),
    )
    app.router.add_get(
        "/api/log/leaves",
        endpoint(log_answer("/api/log/leaves", lambda r: log_leaves(client, int(r.query["start"]), int(r.query["end"])))),
    )
    app.router.add_get(
        "/api/log/consistency",
        endpoint(log_answer("/api/log/consistency", lambda r: log_consistency(client, int(r.query["from"]), int(r.query["to"])))),
    )
    app.router.add_get("/api/openapi.json", endpoint(lambda r: OPENAPI))
    app.router.add_get("/metrics", metrics.scrape)
    app.router.add_get("/", lambda r: web.FileResponse(PAGE))
    return app


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def serve(settings: Settings, host: str, port: int) -> None:
    app = make_app(settings)
    slow_clients.guard(app, settings.header_timeout_s)
    asyncio.run(slow_clients.serve(app, host, port, lambda line: print(line, flush=True)))
