"""A ClickHouse that fails midway: a proxy in front of the real (embedded) ClickHouse that passes
every statement through, but cuts each streamed answer (query_id `stream-`) after its first bytes,
as a server does whose query dies once the body has begun (a memory limit, a timeout, a crash). With
`block`, the cut follows ClickHouse 25.11+'s tagged error block; without, the connection just ends.
The bytes before the cut are the real server's."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web

from streams.embedded.chdb_http import exception_block
from streams.embedded.servers import free_port

SESSION = web.AppKey("session", aiohttp.ClientSession)
HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def _app(upstream: str, after: int, block: bool) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app[SESSION]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as up:
            out = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            if not request.query.get("query_id", "").startswith("stream-") or up.status != 200:
                return web.Response(status=up.status, body=await up.read(), headers=out)
            response = web.StreamResponse(status=200, headers=out)
            await response.prepare(request)
            sent = b""
            async for chunk in up.content.iter_any():
                sent += chunk[: after - len(sent)]
                if len(sent) >= after:
                    break
            await response.write(sent)
            if block:
                error = ValueError(
                    "Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)"
                )
                await response.write(
                    exception_block(error, up.headers["X-ClickHouse-Exception-Tag"])
                )
            request.transport.close()  # flushed, then closed: never the terminating chunk
            return response

    async def start(app: web.Application) -> None:
        app[SESSION] = aiohttp.ClientSession(auto_decompress=False)

    async def stop(app: web.Application) -> None:
        await app[SESSION].close()

    app = web.Application(client_max_size=1 << 30)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextmanager
def cutting_proxy(upstream: str, after: int = 200, block: bool = True) -> Iterator[int]:
    """Serve the proxy on a free loopback port until the block ends; yields the port."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(upstream.rstrip("/"), after, block), handle_signals=False)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
