"""A thin ClickHouse HTTP interface over chDB, so that chDB can be shared by many processes.

chDB locks its data directory to one process. This server owns it and answers the subset of the
ClickHouse HTTP protocol that clickhouse-connect's HTTP client speaks: SQL in the `query`
parameter or in the body, settings as URL parameters, Native (or any) format in and out, lz4 or
gzip request bodies, and errors as ClickHouse sends them (HTTP 500, `Code: N. DB::Exception`).
The engine is real ClickHouse; this layer only carries bytes.

Statements run side by side, as on a ClickHouse server: each on one of a pool of chDB handles to
the same data path (since chDB 4.0 one process may hold several, and queries on different handles
run in parallel; one handle runs one statement at a time). Reads overlap each other and the workers'
inserts, and two workers' inserts overlap, so nothing in tally may count on statements running one
at a time: the write fence does not (docs/exactly-once.md).

One exception keeps time travel exact here: a read that answers with its moment (query_id starting
`moment-`: read.totals) never overlaps an insert (`MomentGate`). An insert stamps its rows when it
starts and shows them when it ends; a moment read beside it would say "as of T" without rows stamped
before T that land later. Such a read waits for the inserts that came before it, and inserts that
come after it wait for it, so it sees exactly the inserts stamped before its moment
(docs/time-travel.md; on a server that is not so).

A SELECT whose query_id starts with `stream-` (exports: `read.export`) is answered chunk by chunk
from a handle of its own: tens of GB must neither sit in memory nor take a handle of the pool for
minutes. Exports read a fixed moment, so running beside the writes changes nothing they see.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hmac
import queue
import re
import secrets
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import chdb
import lz4.frame
import orjson
from aiohttp import web

from streams.embedded.statements import Refused, check_settings, check_statement

# URL parameters that are part of the HTTP protocol, not ClickHouse settings.
RESERVED_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "user",
        "password",
        "query_id",
        "compress",
        "decompress",
        "wait_end_of_query",
        "buffer_size",
        "quota_key",
        "role",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
    }
)
_INSERT = re.compile(rb"^\s*INSERT\b", re.IGNORECASE)
_INSERT_FORMAT = re.compile(
    rb"^(?P<stmt>.*?)\bFORMAT\s+(?P<fmt>\w+)[ \t]*(\r?\n)?", re.IGNORECASE | re.DOTALL
)
_INPUT_FUNCTION = re.compile(r"\binput\s*\(\s*('(?:[^'\\]|\\.)*')\s*\)", re.IGNORECASE)
_OUTPUT_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")


# transports of the streams being answered: aborted at a stop
STREAMING = web.AppKey("streaming", set)
READER_STALL_S = 30.0  # a streaming reader that takes no chunk for this long is given up
MAX_BODY = 1 << 30  # bytes of a request body, as sent and as decompressed
DEFAULT_HANDLES = 4  # statements at once: a few readers beside the workers' inserts, on a few cores
MOMENT_QUERY = "moment-"  # query_id prefix of a read that answers with its moment


class MomentGate:
    """Inserts and moment reads, let in by order of arrival: each waits for every earlier statement
    of the other kind to end, so inserts overlap inserts and reads overlap reads, never the two, and
    neither kind can starve the other."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._arrived = 0
        self._open: dict[
            int, bool
        ] = {}  # arrival -> is an insert, for every statement not yet ended

    @contextlib.contextmanager
    def enter(self, insert: bool) -> Iterator[None]:
        with self._changed:
            self._arrived += 1
            me = self._arrived
            self._open[me] = insert
            self._changed.wait_for(
                lambda: all(kind == insert for n, kind in self._open.items() if n < me)
            )
        try:
            yield
        finally:
            with self._changed:
                del self._open[me]
                self._changed.notify_all()


class _Handle:
    """One chDB connection, the database it is in and the settings it holds."""

    def __init__(self, path: Path) -> None:
        self.conn = chdb.connect(str(path))
        self.database = "default"
        self.settings: dict[str, str] = {}

    def use(self, database: str, settings: Mapping[str, str]) -> None:
        """Put the handle in `database` with exactly `settings` and the defaults for the rest, as
        one HTTP request sees them. Only what differs from the last request is SET (or reset),
        in one statement each: clickhouse-connect sends the same few settings with every query,
        and a SET costs as much as a point read."""
        if database != self.database:
            self.conn.query(f"USE {_quote_ident(database)}")
            self.database = database
        stale = [name for name in self.settings if name not in settings]
        if stale:
            self.conn.query("SET " + ", ".join(f"{_quote_ident(n)} = DEFAULT" for n in stale))
            for name in stale:
                del self.settings[name]
        changed = {k: v for k, v in settings.items() if self.settings.get(k) != v}
        if not changed:
            return
        try:
            self.conn.query(
                "SET "
                + ", ".join(f"{_quote_ident(k)} = {_quote_value(v, k)}" for k, v in changed.items())
            )
        except Exception:
            # A setting refused (unknown, or a bad value) may leave the others half set: back to
            # the defaults, one by one, so the next request starts clean.
            for name in {*self.settings, *changed}:
                with contextlib.suppress(Exception):
                    self.conn.query(f"SET {_quote_ident(name)} = DEFAULT")
            self.settings = {}
            raise
        self.settings.update(changed)


class ChdbEngine:
    """A pool of chDB connections to one data path; each runs one statement at a time."""

    def __init__(self, path: Path, handles: int = DEFAULT_HANDLES) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._free: queue.LifoQueue[_Handle] = queue.LifoQueue()
        for _ in range(max(1, handles)):
            self._free.put(_Handle(path))
        self._streamer: _Handle | None = None  # a handle of its own, opened on the first stream
        self._stream_lock = threading.Lock()
        self._gate = MomentGate()

    def stream(
        self,
        sql: bytes,
        database: str,
        settings: dict[str, str],
        default_format: str,
        put: Callable[[bytes], None],
    ) -> None:
        """Run one SELECT on a handle of its own, beside the pool, handing its output to `put` a
        chunk at a time (`put` may block: that is the reader's back-pressure). One stream at a time.

        ClickHouse writes the output into a temporary file with its own format writer (file()),
        which then goes out a chunk at a time: chDB's streaming results format each chunk on its
        own, so a CSVWithNames stream repeated its header and a Parquet stream was several files end
        to end (a reader saw the last one only). The file holds the output once, on disk, never in
        memory."""
        text = sql.decode()
        found = _OUTPUT_FORMAT.search(text)
        fmt = found.group(1) if found else default_format
        select = text[: found.start()] if found else text
        with self._stream_lock, tempfile.TemporaryDirectory(prefix="tally-stream-") as scratch:
            if self._streamer is None:
                self._streamer = _Handle(self._path)
            self._streamer.use(database, settings)
            out = Path(scratch) / f"out.{fmt.lower()}"
            self._streamer.conn.query(
                f"INSERT INTO FUNCTION file('{out}', '{_quote_ident(fmt)}') {select}"
            )
            with out.open("rb") as written:
                while chunk := written.read(1 << 20):
                    put(chunk)

    def execute(
        self,
        sql: bytes,
        data: bytes | None,
        database: str,
        settings: dict[str, str],
        default_format: str,
        query_id: str = "",
    ) -> tuple[bytes, str, dict[str, int]]:
        insert = data is not None or _INSERT.match(sql) is not None
        if insert or query_id.startswith(MOMENT_QUERY):
            with self._gate.enter(insert):
                return self._execute(sql, data, database, settings, default_format)
        return self._execute(sql, data, database, settings, default_format)

    def _execute(
        self,
        sql: bytes,
        data: bytes | None,
        database: str,
        settings: dict[str, str],
        default_format: str,
    ) -> tuple[bytes, str, dict[str, int]]:
        handle = self._free.get()  # waits while every handle runs a statement
        try:
            # A SELECT takes its query parameters with the statement; an insert's go by SET.
            params = {}
            if data is None:
                params = {k[6:]: v for k, v in settings.items() if k.startswith("param_")}
                settings = {k: v for k, v in settings.items() if not k.startswith("param_")}
            handle.use(database, settings)
            return self._run(handle.conn, sql, data, default_format, params)
        finally:
            self._free.put(handle)

    def _run(
        self,
        conn: Any,
        sql: bytes,
        data: bytes | None,
        default_format: str,
        params: dict[str, str],
    ) -> tuple[bytes, str, dict[str, int]]:
        if data is not None:
            match = _INSERT_FORMAT.match(sql)
            if match is None:
                raise ValueError(
                    "Code: 62. DB::Exception: INSERT with data needs a FORMAT clause. "
                    "(SYNTAX_ERROR)"
                )
            if _INPUT_FUNCTION.search(match["stmt"].decode()):
                return self._insert_select_input(
                    conn, match["stmt"].decode(), match["fmt"].decode(), data, default_format
                )
            with conn.send_insert(match["stmt"].decode(), match["fmt"].decode()) as inserter:
                inserter.append(data)
                result = inserter.finish()
            return b"", default_format, {"written_rows": _count(result, "rows_written")}
        text = sql.decode()
        found = _OUTPUT_FORMAT.search(text)
        fmt = found.group(1) if found else default_format
        result = conn.query(text, fmt, params=params)
        payload = result.bytes() if hasattr(result, "bytes") else bytes(result or b"")
        return payload, fmt, {"read_rows": _count(result, "rows_read")}

    def _insert_select_input(
        self, conn: Any, statement: str, fmt: str, data: bytes, default_format: str
    ) -> tuple[bytes, str, dict[str, int]]:
        """`INSERT INTO t SELECT .. FROM input('structure') WHERE ..`: chDB's streaming insert
        refuses INSERT SELECT, so the data goes through a temporary file read with file() in one
        statement."""
        with tempfile.NamedTemporaryFile(suffix=f".{fmt.lower()}") as tmp:
            tmp.write(data)
            tmp.flush()
            path = tmp.name.replace("'", "")
            rewritten = _INPUT_FUNCTION.sub(
                lambda m: f"file('{path}', '{fmt}', {m.group(1)})", statement
            )
            result = conn.query(rewritten, default_format)
        return b"", default_format, {"written_rows": _count(result, "rows_written")}


def _count(result: object, name: str) -> int:
    value = getattr(result, name, 0)
    return int(value() if callable(value) else value)


def _quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Code: 115. DB::Exception: bad name {name!r}. (UNKNOWN_SETTING)")
    return name


def _quote_value(value: str, name: str = "") -> str:
    """A setting's value for SET. A query parameter (`param_*`) is always text, parsed by its
    declared type: unquoted, '0000000002' would become the number 2 and compare as the string
    '2'."""
    if not name.startswith("param_") and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _too_large() -> ValueError:
    return ValueError(
        f"Code: 241. DB::Exception: the request body decompresses to more than {MAX_BODY >> 20} "
        "MiB. (MEMORY_LIMIT_EXCEEDED)"
    )


def _decode_body(body: bytes, encoding: str, limit: int | None = None) -> bytes:
    """The body as sent, decompressed; never more than `limit` bytes (MAX_BODY), however small the
    compressed body that claims more (a gzip bomb is refused, not inflated)."""
    limit = MAX_BODY if limit is None else limit
    encoding = encoding.lower().strip()
    if not body or encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise _too_large()
        return out
    if encoding == "lz4":
        # clickhouse-connect sends one lz4 frame per block: decompress every frame, not only the
        # first.
        frames: list[bytes] = []
        rest, size = body, 0
        while rest:
            decompressor = lz4.frame.LZ4FrameDecompressor()
            frame = decompressor.decompress(rest, max_length=limit + 1 - size)
            size += len(frame)
            if size > limit or (not decompressor.eof and not decompressor.unused_data):
                raise _too_large()
            frames.append(frame)
            rest = decompressor.unused_data
        return b"".join(frames)
    raise ValueError(
        f"Code: 1. DB::Exception: unsupported Content-Encoding {encoding}. (NOT_IMPLEMENTED)"
    )


async def _stream(
    request: web.Request,
    engine: ChdbEngine,
    sql: bytes,
    params: Mapping[str, str],
    settings: dict[str, str],
    query_id: str,
    stall_s: float = READER_STALL_S,
) -> web.StreamResponse:
    """Answer a `stream-` query chunk by chunk (chunked transfer). An error before the first chunk
    is a 500 as usual; after it, the body ends as ClickHouse's own HTTP interface ends it (25.11 and
    later): the error in a block marked by the response's X-ClickHouse-Exception-Tag, then the
    connection closed without the terminating chunk, so that no reader can take the file for a whole
    one."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=4)
    gone = threading.Event()  # the reader hung up: stop the query instead of filling the void

    def put(item: bytes | BaseException | None) -> None:
        """Hand a chunk to the reader; a reader that takes none for READER_STALL_S is given up, so
        that the stream's handle and lock are not held for ever by one that stopped reading (and a
        stop of the server never waits on it)."""
        future = asyncio.run_coroutine_threadsafe(chunks.put(item), loop)
        deadline = time.monotonic() + stall_s
        while True:
            if gone.is_set() or time.monotonic() > deadline:
                # given up: cut, not left open
                if not gone.is_set() and request.transport is not None:
                    loop.call_soon_threadsafe(request.transport.abort)
                gone.set()
                future.cancel()
                raise ConnectionResetError("the reader hung up or stopped reading")
            try:
                future.result(timeout=0.25)
                return
            except concurrent.futures.TimeoutError:
                continue

    def run() -> None:
        try:
            engine.stream(
                sql,
                params.get("database", "default"),
                settings,
                params.get("default_format", "TabSeparated"),
                put,
            )
            put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, never lost in the thread
            put(exc)

    worker = asyncio.create_task(asyncio.to_thread(run))
    first = await chunks.get()
    if isinstance(first, BaseException):
        await worker
        message = (
            str(first) if str(first).startswith("Code:") else f"Code: 1000. DB::Exception: {first}"
        )
        return web.Response(
            status=500, text=message + "\n", headers={"X-ClickHouse-Query-Id": query_id}
        )
    return await _relay(request, first, chunks, query_id, worker, gone)


async def _relay(
    request: web.Request,
    first: bytes,
    chunks: asyncio.Queue[bytes | BaseException | None],
    query_id: str,
    worker: asyncio.Task,
    gone: threading.Event,
) -> web.StreamResponse:
    """The stream's chunks to the reader as they come, an error after the first as ClickHouse
    marks it; then the reading thread let go."""
    tag = secrets.token_hex(8)
    response = web.StreamResponse(
        headers={
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Exception-Tag": tag,
        }
    )
    streaming = request.app[STREAMING]
    streaming.add(request.transport)
    try:
        await response.prepare(request)
        item = first
        while item is not None:
            if isinstance(item, BaseException):
                await response.write(exception_block(item, tag))
                request.transport.close()  # no terminating chunk: the body is visibly cut
                return response
            await response.write(item)
            item = await chunks.get()
        await response.write_eof()
    finally:
        streaming.discard(request.transport)
        gone.set()
        while not worker.done():  # let the thread's last put return, then it stops
            with contextlib.suppress(asyncio.QueueEmpty):
                chunks.get_nowait()
            await asyncio.sleep(0.01)
    return response


def exception_block(error: BaseException, tag: str) -> bytes:
    """An error after the first chunk, as ClickHouse 25.11+ writes it into a body already begun."""
    message = (
        str(error) if str(error).startswith("Code:") else f"Code: 1000. DB::Exception: {error}"
    )
    text = message.encode()
    footer = f"{len(text)} {tag}".encode()
    return (
        b"\r\n__exception__\r\n"
        + tag.encode()
        + b"\r\n"
        + text
        + b"\n"
        + footer
        + b"\r\n__exception__\r\n"
    )


def user_of(request: web.Request, users: Mapping[str, str]) -> str | None:
    """Who the request authenticates as (HTTP basic auth, ClickHouse's X-ClickHouse-User/Key headers
    or its user/password parameters), if the password is that user's."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
    else:
        user = request.headers.get("X-ClickHouse-User") or request.query.get("user", "")
        password = request.headers.get("X-ClickHouse-Key") or request.query.get("password", "")
    known = users.get(user)
    return (
        user
        if known is not None and hmac.compare_digest(known.encode(), password.encode())
        else None
    )


def _statement(query: bytes, body: bytes) -> tuple[bytes, bytes | None]:
    """The statement and an insert's data, from the `query` parameter and the body as
    clickhouse-connect sends them: the statement in the URL and the data in the body, the statement
    in the body, or an insert's statement and its data (after the FORMAT clause) in the body."""
    sql, data = query, None
    if sql and _INSERT.match(sql) and body:
        data = body  # statement in the URL, data in the body
    elif sql:
        sql = sql + b"\n" + body if body else sql
    else:
        sql = body
    if data is None and _INSERT.match(sql):
        match = _INSERT_FORMAT.match(sql)
        if match and len(match.group(0)) < len(sql):
            data = sql[match.end() :]
            sql = sql[: match.end()]
    return sql, data


def _error(exc: Exception, query_id: str) -> web.Response:
    """An error as ClickHouse answers it: a refusal 403 or 400, an engine error 500; with its
    code."""
    message = str(exc)
    code = _ERROR_CODE.search(message)
    if isinstance(exc, Refused):
        status = 403 if "ACCESS_DENIED" in message or "READONLY" in message else 400
        text = message
    else:
        status = 500
        text = message if message.startswith("Code:") else f"Code: 1000. DB::Exception: {message}"
    return web.Response(
        status=status,
        text=text + "\n",
        headers={
            "X-ClickHouse-Exception-Code": code.group(1) if code else "1000",
            "X-ClickHouse-Query-Id": query_id,
        },
    )


def _answer(payload: bytes, fmt: str, summary: dict, query_id: str) -> web.Response:
    return web.Response(
        body=payload,
        headers={
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "tally-embedded-chdb",
            "X-ClickHouse-Summary": orjson.dumps({k: str(v) for k, v in summary.items()}).decode(),
        },
    )


def make_app(
    engine: ChdbEngine,
    users: Mapping[str, str],
    readers: frozenset[str] | set[str] = frozenset(),
    stall_s: float = READER_STALL_S,
) -> web.Application:
    """The HTTP interface for `users` (name -> password); `readers` among them only read; a
    streaming reader that takes nothing for `stall_s` is given up."""

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    async def handle(request: web.Request) -> web.Response:
        params = request.query
        query_id = params.get("query_id") or str(uuid.uuid4())
        started = time.perf_counter()
        user = user_of(request, users)
        if user is None:
            return web.Response(
                status=401,
                text="Code: 516. DB::Exception: Authentication failed: password is incorrect, "
                "or there is no user with such name (the embedded ClickHouse's users are in <data "
                "dir>/clickhouse-users.json). (AUTHENTICATION_FAILED)\n",
                headers={"X-ClickHouse-Exception-Code": "516", "X-ClickHouse-Query-Id": query_id},
            )
        try:
            body = _decode_body(await request.read(), request.headers.get("Content-Encoding", ""))
            sql, data = _statement(params.get("query", "").encode(), body)
            if not sql.strip():
                return web.Response(text="Ok.\n")
            check_statement(
                sql.decode("utf-8", "replace"), "GET" if user in readers else request.method
            )
            settings = {k: v for k, v in params.items() if k not in RESERVED_PARAMS}
            check_settings(settings)
            if query_id.startswith("stream-") and data is None and not _INSERT.match(sql):
                return await _stream(request, engine, sql, params, settings, query_id, stall_s)
            payload, fmt, summary = await asyncio.to_thread(
                engine.execute,
                sql,
                data,
                params.get("database", "default"),
                settings,
                params.get("default_format", "TabSeparated"),
                query_id,
            )
        except Exception as exc:  # every engine error goes back to the client, as ClickHouse does
            return _error(exc, query_id)
        summary["elapsed_ns"] = int((time.perf_counter() - started) * 1e9)
        return _answer(payload, fmt, summary, query_id)

    app = web.Application(client_max_size=MAX_BODY)
    app[STREAMING] = set()
    app.router.add_get("/ping", ping)
    app.router.add_route("*", "/", handle)
    return app
