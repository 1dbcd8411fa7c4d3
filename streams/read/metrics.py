"""The API's Prometheus metrics at `/metrics`: requests by route and status, their latency, and how
many TPS pages each read of ClickHouse answered.

Routes are counted by their pattern (`/api/tps/{code}`), never by the path a reader typed, so that
the number of series stays fixed whatever readers ask.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOGETHER_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self.requests = Counter(
            "tally_api_requests",
            "API requests answered, by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "tally_api_request_seconds",
            "Time to answer an API request, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pages_together = Histogram(
            "tally_api_tps_pages_per_read",
            "TPS pages answered by one read of ClickHouse (streams.read.batched)",
            buckets=TOGETHER_BUCKETS,
            registry=registry,
        )

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.requests.labels(route, str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)

    async def scrape(self, _: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
