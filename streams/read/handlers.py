"""The API's routes, grouped by resource: results, seats (and dapils), TPS, changes, exports, the
log.

Each resource is a small class over one `Reader` (the read-only client, the answer cache and the
ballot views they share) and gives its routes; `streams.read.api.make_app` only wires them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import orjson
from aiohttp import web
from clickhouse_connect.driver.client import Client

from streams.clickhouse.pages import read_pages
from streams.clickhouse.registry_store import read_dpt, registry_version
from streams.core.moments import MomentError, moment_text
from streams.core.regions import digits
from streams.core.seats import LEGISLATIVE
from streams.read.answers import (
    ContestIndex,
    anomalies,
    check_tps,
    dapil_view,
    region_results,
    tps_page,
    tps_pages,
)
from streams.read.batched import Batcher
from streams.read.cache import ResponseCache
from streams.read.changes import DEFAULT_LIMIT, Cursor, changes
from streams.read.dapils import DapilError, ballot_view, dapil_list, dapil_of, seats_of
from streams.read.export import FILE_NAMES as EXPORT_FILE_NAMES
from streams.read.export import FILES as EXPORT_FILES
from streams.read.export import MEDIA, ExportError, ExportFailed, manifest_only, pin, stream
from streams.read.export import check as check_export
from streams.read.log_view import checkpoints, consistency, inclusion, leaves
from streams.read.metrics import ApiMetrics
from streams.read.openapi import OPENAPI
from streams.read.registry_memo import RegistryMemo
from streams.read.requests import ApiError, cache_key, check_request, moment_param, results_key
from streams.read.scopes import change_regions

log = logging.getLogger("tally.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Routes = list[tuple[str, Handler]]

EXPORTS_AT_ONCE = 4  # exports streamed at once by one API process
EXPORT_RETRY_S = 5  # what a 503 tells the reader to wait (Retry-After)
WRITE_STALL_S = 30.0  # a reader that takes no piece of an export for this long is given up


def json_response(body: object, status: int = 200) -> web.Response:
    """`body` as JSON; bytes are JSON already (a kept answer: `ResponseCache.get_json`)."""
    encoded = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=encoded, status=status, content_type="application/json")


def respond(answer: Callable[[web.Request], Awaitable[dict | bytes]]) -> Handler:
    """A handler from an answer: its dict as JSON, an ApiError as its status and words, anything
    else a 500 that names the error's kind (the trace goes to the log, never to the reader)."""

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


class Reader:
    """What every resource reads through: one client, one cache of answers and one of what the
    registry alone says, one view of each ballot's dapils, and the API's metrics."""

    def __init__(
        self, client: Client, cache: ResponseCache, threshold: float, metrics: ApiMetrics
    ) -> None:
        self.client = client
        self.cache = cache
        self.threshold = threshold
        self.metrics = metrics
        # Every TPS's DPT (~16 B a TPS; ~2.5 s for 823k TPS) and the contests every TPS page reads
        # are pinned: no reader's scopes push them out. One memo, so one probe of the registry's
        # version a second.
        self.registry = RegistryMemo(
            lambda: registry_version(client), pinned=frozenset({"dpt", "contests"})
        )
        # Per legislative ballot, its live view and the JSON of the answers made from it so far (a
        # dapil's results, seats): every reader of one view gets the same bytes, encoded once.
        self.made: dict[str, tuple[dict, dict[str, bytes]]] = {}

    def dpt_table(self) -> Mapping[str, int]:
        return self.registry.get("dpt", lambda: read_dpt(self.client))

    def contests(self) -> ContestIndex:
        return self.registry.get("contests", lambda: ContestIndex.read(self.client))

    def cached(self, build: Callable[[web.Request], dict], path: str) -> Handler:
        """A handler whose answer (checked against the document's `path`) is kept in the cache, one
        entry a question however it is spelled."""

        def checked(request: web.Request) -> dict:
            check_request(request, path)
            return build(request)

        return respond(
            lambda r: self.cache.get_json(cache_key(r.path, r.query), lambda: checked(r))
        )

    async def ballot_view(
        self, ballot: str, what: str, as_of: datetime | None = None, status: int = 400
    ) -> dict:
        """The ballot's shared dapil view (contests, dapil totals, seats), one cache entry a ballot
        (and moment): every dapil page and seats answer of the ballot comes from it, so none waits
        for its own queries."""
        if ballot not in LEGISLATIVE:
            raise ApiError(status, f"{what} {', '.join(LEGISLATIVE)}, not {ballot}")
        return await self.cache.get(
            f"ballot:{ballot}:{as_of or ''}",
            lambda: dapil_view(
                lambda: ballot_view(self.client, ballot, self.threshold, as_of=as_of)
            ),
        )

    def made_json(
        self,
        ballot: str,
        as_of: datetime | None,
        view: dict,
        what: str,
        answer: Callable[[], dict],
    ) -> dict | bytes:
        """`answer()`, made from the ballot's `view` alone, as JSON kept beside the live view until
        the view is refreshed (answers as of a moment, which readers choose without bound, are
        made again each time)."""
        if as_of is not None:
            return answer()
        kept = self.made.get(ballot)
        if kept is None or kept[0] is not view:
            kept = self.made[ballot] = (view, {})
        encoded = kept[1].get(what)
        if encoded is None:
            encoded = kept[1][what] = orjson.dumps(answer())
        return encoded

    async def refuse_unknown(self, view: dict, dapil: str) -> None:
        """Raise the API error that says why `dapil` is not a contest of `view` (unknown, of another
        ballot, or loaded after the view was taken: a query, on a thread); nothing if it is one."""
        if dapil not in view["contests"]:
            await asyncio.to_thread(dapil_view, lambda: dapil_of(self.client, view, dapil))

    async def results_json(
        self, ballot: str, level: str | None, region: str | None, as_of: datetime | None = None
    ) -> bytes:
        """A region's results, as the JSON they are kept as."""
        return await self.cache.get_json(
            results_key(ballot, level, region, as_of),
            lambda: region_results(self.client, ballot, level, region, as_of, self.registry),
        )

    async def warm(self, _: web.Application) -> None:
        """Compute the views every dashboard opens with before readers ask: national and province
        results and each province's children, per ballot held, and read the DPT every TPS page
        shows. The first reader of a view would otherwise wait behind every other query in the
        ClickHouse queue."""
        try:
            await asyncio.to_thread(self.dpt_table)  # before the first TPS page needs it
            ballots, provinces = await asyncio.to_thread(self._held)
        except Exception:  # noqa: BLE001 - a missing schema or registry only means nothing to warm
            log.warning("no views warmed: the registry could not be read", exc_info=True)
            return
        for ballot in sorted(ballots, key=lambda b: b != "PPWP"):
            for level, region in [("national", None), ("province", None)] + [
                (None, code) for code in provinces
            ]:
                # an empty ballot or region is not worth a failure
                with contextlib.suppress(Exception):
                    await self.results_json(ballot, level, region)
            if ballot in LEGISLATIVE:  # the dapils and seats every legislative page opens with
                with contextlib.suppress(Exception):
                    await self.ballot_view(ballot, "")
        log.info("warmed %d views", len(self.cache.entries))

    def _held(self) -> tuple[list[str], list[str]]:
        ballots = [
            b
            for (b,) in self.client.query(
                "SELECT DISTINCT ballot FROM region_tps_total"
            ).result_rows
        ]
        provinces = [
            c
            for (c,) in self.client.query(
                "SELECT code FROM regions WHERE level = 'province'"
            ).result_rows
        ]
        return ballots, provinces


class Results:
    """/api/results (a region's, or a dapil's) and /api/anomalies (flags and rejections per
    region)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    async def results(self, r: web.Request) -> dict | bytes:
        check_request(r, "/api/results")
        ballot, level, region, dapil = (
            r.query.get("ballot", "PPWP"),
            *(r.query.get(k) for k in ("level", "region", "dapil")),
        )
        as_of = moment_param(r)
        if dapil:  # the document says so: level and region are not used then
            # No dapil of PPWP exists: not found, like an unknown dapil of a legislative ballot.
            view = await self.reader.ballot_view(ballot, "dapils are contests of", as_of, 404)
            await self.reader.refuse_unknown(view, dapil)
            return self.reader.made_json(
                ballot,
                as_of,
                view,
                dapil,
                lambda: dapil_view(lambda: dapil_of(self.reader.client, view, dapil)),
            )
        return await self.reader.results_json(ballot, level, region, as_of)

    def anomalies(self, r: web.Request) -> dict:
        return anomalies(
            self.reader.client, r.query.get("level"), r.query.get("region"), moment_param(r)
        )

    def routes(self) -> Routes:
        return [
            ("/api/results", respond(self.results)),
            ("/api/anomalies", self.reader.cached(self.anomalies, "/api/anomalies")),
        ]


class Seats:
    """/api/seats (a ballot's or a dapil's) and /api/dapils (the contests of a ballot)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    async def seats(self, r: web.Request) -> dict | bytes:
        check_request(r, "/api/seats")
        ballot, as_of = r.query.get("ballot", ""), moment_param(r)
        view = await self.reader.ballot_view(ballot, "seats are elected on", as_of)
        dapil = r.query.get("dapil")
        if dapil:  # an unknown dapil, or one of another ballot, is an error
            await self.reader.refuse_unknown(view, dapil)
        return self.reader.made_json(
            ballot, as_of, view, f"seats:{dapil or ''}", lambda: seats_of(view, dapil)
        )

    def dapils(self, r: web.Request) -> dict:
        return dapil_view(
            lambda: dapil_list(self.reader.client, r.query.get("ballot", ""), r.query.get("region"))
        )

    def routes(self) -> Routes:
        return [
            ("/api/seats", respond(self.seats)),
            ("/api/dapils", self.reader.cached(self.dapils, "/api/dapils")),
        ]


class Tps:
    """/api/tps/{code}: one polling station's counts, per ballot, and their history.

    Pages of TPS nobody asked for before (each reader of the night asks its own) are read together:
    the pages asked while a read is in flight come from one read of all of them (`Batcher`)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

        def pages_of(codes: list[str]) -> dict[str, dict]:
            pages = read_pages(reader.client, codes)  # one statement for all of them
            return tps_pages(codes, pages, reader.dpt_table(), reader.contests())

        async def read(codes: list[str]) -> dict[str, dict]:
            reader.metrics.pages_together.observe(len(codes))
            return await asyncio.to_thread(pages_of, codes)

        self.pages = Batcher(read)

    async def detail(self, r: web.Request) -> dict:
        check_request(r, "/api/tps/{code}")
        code, ballot = r.match_info["code"], r.query.get("ballot")
        check_tps(code, ballot)
        page = await self.pages.get(code)
        return tps_page({code: page} if page else {}, code, ballot)

    def routes(self) -> Routes:
        return [
            (
                "/api/tps/{code}",
                respond(
                    lambda r: self.reader.cache.get_awaiting_json(
                        cache_key(r.path, r.query), lambda: self.detail(r)
                    )
                ),
            )
        ]


class Changes:
    """/api/changes: the feed of applied revisions, pageable by cursor, within a region or dapil."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def changes(self, r: web.Request) -> dict:
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
        region, dapil, until = r.query.get("region"), r.query.get("dapil"), moment_param(r, "until")
        try:
            regions, within = change_regions(self.reader.client, ballot, region, dapil)
            data = changes(
                self.reader.client,
                ballot,
                regions,
                since,
                until,
                int(limit),
                order == "desc",
                within,
            )
        except DapilError as exc:
            raise ApiError(exc.status, str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return {**data, "region": region, "dapil": dapil}

    def routes(self) -> Routes:
        return [("/api/changes", self.reader.cached(self.changes, "/api/changes"))]


class Exports:
    """/api/export/{ballot}/{scope}/{file}: open data files and their manifest, as of one moment.

    Exports stream for as long as their readers read: a few at a time, on threads of their own, and
    past that a 503 at once, so that a flood of them never holds what every other answer needs."""

    PATH = "/api/export/{ballot}/{scope}/{file}"

    def __init__(self, reader: Reader) -> None:
        self.client = reader.client
        self.slots = asyncio.Semaphore(EXPORTS_AT_ONCE)
        self.threads = ThreadPoolExecutor(EXPORTS_AT_ONCE, thread_name_prefix="export")

    async def export(self, r: web.Request) -> web.StreamResponse:
        try:
            check_request(r, self.PATH)
            ballot, scope, file = (
                r.match_info["ballot"],
                r.match_info["scope"],
                r.match_info["file"],
            )
            as_of = moment_param(r)
            if file == "MANIFEST.json":
                fmt = r.query.get("format", "csv")
                check_export(ballot, scope, fmt)
                return json_response(
                    await asyncio.to_thread(manifest_only, self.client, ballot, scope, fmt, as_of)
                )
            name, _, fmt = file.partition(".")
            if name not in EXPORT_FILES:
                raise ApiError(404, f"no file {file}: the files are {', '.join(EXPORT_FILE_NAMES)}")
            check_export(ballot, scope, fmt)
            if self.slots.locked():
                raise ApiError(
                    503,
                    f"{EXPORTS_AT_ONCE} exports are being streamed: "
                    f"try again in {EXPORT_RETRY_S} s",
                )
            moment = await asyncio.to_thread(pin, self.client, as_of)
        except ExportFailed as exc:
            log.warning("manifest of %s failed: %s", r.path_qs, exc)
            return self.refused(
                ApiError(
                    503,
                    f"ClickHouse failed while the files were read: try again in {EXPORT_RETRY_S} s",
                )
            )
        except (ApiError, ExportError) as exc:
            return self.refused(exc)
        async with self.slots:
            return await self.stream(r, ballot, scope, name, fmt, moment)

    @staticmethod
    def refused(exc: ApiError | ExportError) -> web.Response:
        response = json_response({"error": str(exc)}, exc.status)
        if exc.status == 503:
            response.headers["Retry-After"] = str(EXPORT_RETRY_S)
        return response

    async def stream(
        self, r: web.Request, ballot: str, scope: str, name: str, fmt: str, moment: datetime
    ) -> web.StreamResponse:
        """The file, chunk by chunk as ClickHouse sends it, read on the exports' own threads: a
        reader that reads slowly holds one of them, never a thread the other answers need, and one
        that takes nothing for WRITE_STALL_S is given up. If ClickHouse fails once the file has
        begun, the connection is cut before the terminating chunk: the reader's client reports a
        body that ended early, and no byte of the error is in the file (so neither it nor its
        manifest passes as whole)."""
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(
            headers={
                "Content-Type": MEDIA[fmt],
                "Content-Disposition": f'attachment; filename="{ballot}-{scope}-{name}.{fmt}"',
                "X-Tally-As-Of": moment_text(moment),
            }
        )
        await response.prepare(r)
        chunks = stream(self.client, ballot, scope, name, fmt, moment)
        try:
            while chunk := await loop.run_in_executor(self.threads, next, chunks, b""):
                await asyncio.wait_for(response.write(chunk), WRITE_STALL_S)
        except (ExportFailed, TimeoutError, ConnectionError) as exc:
            log.warning("export %s cut: %s", r.path_qs, exc or type(exc).__name__)
            if r.transport is not None:
                r.transport.abort()
            return response
        finally:
            await loop.run_in_executor(self.threads, chunks.close)
        await response.write_eof()
        return response

    def routes(self) -> Routes:
        return [(self.PATH, self.export)]


class Log:
    """/api/log/*: the transparency log's signed checkpoints, inclusion and consistency proofs,
    leaves."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def checkpoints(self, r: web.Request) -> dict:
        return self._answer(lambda: checkpoints(self.reader.client))

    def proof(self, r: web.Request) -> dict:
        at = int(r.query["checkpoint"]) if "checkpoint" in r.query else None
        return self._answer(
            lambda: inclusion(self.reader.client, r.query["tps"], r.query["ballot"], at)
        )

    def leaves(self, r: web.Request) -> dict:
        return self._answer(
            lambda: leaves(self.reader.client, int(r.query["start"]), int(r.query["end"]))
        )

    def consistency(self, r: web.Request) -> dict:
        return self._answer(
            lambda: consistency(self.reader.client, int(r.query["from"]), int(r.query["to"]))
        )

    @staticmethod
    def _answer(build: Callable[[], dict]) -> dict:
        try:
            return build()
        except DapilError as exc:
            raise ApiError(exc.status, str(exc)) from None

    def routes(self) -> Routes:
        paths = {
            "checkpoints": self.checkpoints,
            "proof": self.proof,
            "leaves": self.leaves,
            "consistency": self.consistency,
        }
        return [
            (f"/api/log/{name}", self.reader.cached(build, f"/api/log/{name}"))
            for name, build in paths.items()
        ]


class Document:
    """/api/openapi.json: the contract every parameter is checked against."""

    def __init__(self, reader: Reader) -> None:
        pass

    @staticmethod
    async def document(_: web.Request) -> dict:
        return OPENAPI

    def routes(self) -> Routes:
        return [("/api/openapi.json", respond(self.document))]


RESOURCES = (Results, Seats, Tps, Changes, Exports, Log, Document)
