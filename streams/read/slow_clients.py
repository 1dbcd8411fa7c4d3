"""Slow clients closed: the API serves many readers on one event loop, and a connection that sends
its request a byte a minute (or never) would hold its socket and memory for ever (aiohttp bounds
neither the time to a request's headers nor, before the first request, a connection's idle time).

Every connection has one deadline at a time: its request's headers must be in within `header_s` of
the connection opening or of its previous answer (which also bounds a kept-alive connection's idle
time); an answer being made or streamed has none (an export streams for minutes, bounded by its own
write stall). A body no handler reads is drained by aiohttp for at most `lingering_s` after the
answer, and the next deadline closes the connection if it still dribbles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

HEADER_TIMEOUT_S = 10.0
LINGERING_S = 5.0


class Deadlines:
    """The one timer of each open connection: when it fires, the connection is closed."""

    def __init__(self, header_s: float = HEADER_TIMEOUT_S) -> None:
        self.header_s = header_s
        self.timers: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}

    def arm(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None or transport.is_closing():
            return
        self.disarm(transport)
        self.timers[transport] = asyncio.get_running_loop().call_later(
            self.header_s, self._expire, transport
        )

    def disarm(self, transport: asyncio.BaseTransport | None) -> None:
        timer = self.timers.pop(transport, None) if transport is not None else None
        if timer is not None:
            timer.cancel()

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        self.timers.pop(transport, None)
        # abort, not close: a client that reads nothing would hold a close for ever
        transport.abort()


DEADLINES = web.AppKey("deadlines", Deadlines)


class Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with its deadline armed when the connection opens."""

    def __init__(self, inner: RequestHandler, deadlines: Deadlines) -> None:
        self.inner = inner
        self.deadlines = deadlines
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)
        self.deadlines.arm(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadlines.disarm(self.transport)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def middleware(deadlines: Deadlines) -> Callable:
    """No deadline while a request is answered; the next one armed once it is."""

    @web.middleware
    async def timed(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ):
        deadlines.disarm(request.transport)
        try:
            return await handler(request)
        finally:
            deadlines.arm(request.transport)

    return timed


def guard(app: web.Application, header_s: float) -> None:
    """Put `app`'s connections under deadlines of `header_s` (served by `serve`)."""
    app[DEADLINES] = Deadlines(header_s)
    app.middlewares.append(middleware(app[DEADLINES]))


async def serve(app: web.Application, host: str, port: int, say: Callable[[str], object]) -> None:
    """Serve a guarded `app` until SIGINT or SIGTERM, every connection under its deadlines."""
    import signal

    loop = asyncio.get_running_loop()
    runner = web.AppRunner(app, lingering_time=LINGERING_S, handle_signals=False)
    await runner.setup()
    server = runner.server
    assert server is not None
    deadlines = app[DEADLINES]
    listening = await loop.create_server(lambda: Guarded(server(), deadlines), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say(f"serving on http://{host}:{port} (Ctrl-C to stop)")
    try:
        await stop.wait()
    finally:
        listening.close()
        await runner.cleanup()
