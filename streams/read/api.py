"""`tally serve`: the read side over HTTP (JSON), for dashboards, auditors and citizens.

Reads ClickHouse only, through clickhouse-connect (embedded: through `tally clickhouse`); many API
processes may run beside the workers. Every answer is built from small indexed queries. The routes
live in `streams.read.handlers`, one class a resource; this module wires them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import clickhouse_connect
from aiohttp import web

from streams.embedded.servers import clickhouse_dsn, read_only
from streams.read import slow_clients
from streams.read.cache import ResponseCache
from streams.read.handlers import RESOURCES, Reader
from streams.read.metrics import ApiMetrics
from streams.settings import Settings

PAGE = Path(__file__).resolve().parent / "web" / "index.html"


def make_app(settings: Settings, cache_ttl: float = 1.0) -> web.Application:
    # No HTTP session: requests of many readers run side by side on one client.
    client = clickhouse_connect.get_client(
        dsn=read_only(settings, clickhouse_dsn(settings)), autogenerate_session_id=False
    )
    metrics = ApiMetrics()
    reader = Reader(client, ResponseCache(cache_ttl), settings.dpr_threshold, metrics)
    app = web.Application(middlewares=[metrics.middleware])

    async def start_warming(app: web.Application) -> None:
        app["warming"] = asyncio.create_task(reader.warm(app))

    app.on_startup.append(start_warming)
    for resource in RESOURCES:
        for path, handler in resource(reader).routes():
            app.router.add_get(path, handler)
    app.router.add_get("/metrics", metrics.scrape)
    app.router.add_get("/", lambda r: web.FileResponse(PAGE))
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    app = make_app(settings)
    slow_clients.guard(app, settings.header_timeout_s)
    asyncio.run(slow_clients.serve(app, host, port, lambda line: print(line, flush=True)))
