"""Records found off their home partition go home before anything about them is decided.

A worker that reads a record whose key's home (`core.placement.home_partition`) is another partition
sends it there as it came (key, value, Kafka timestamp), with a header naming where it was found,
and acks the source offset only once the broker acknowledged the copy (acks=all). A crash in between
sends it again: at home the copy is then only a duplicate of itself (its event id), counted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.core.pipeline import Message
from streams.core.placement import FORWARDED_FROM
from streams.kafka.produce import make_producer


class Forwarder:
    """Sends records home on one producer of the worker's own, started at its first use."""

    def __init__(self, bootstrap: str, auth: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.producer: AIOKafkaProducer | None = None
        self.sent: dict[tuple[int, int], int] = {}  # (found at, home) -> records sent

    async def send(
        self, topic: str, partition: int, forward: Sequence[tuple[int, Message]]
    ) -> list[asyncio.Future]:
        """Queue the copies of the records of `partition` listed in `forward` ((home, message)
        pairs); returns the futures that resolve when the broker has each one."""
        if not forward:
            return []
        if self.producer is None:
            producer = make_producer(self.bootstrap, self.auth)
            await producer.start()
            self.producer = producer
        sent = []
        for home, message in forward:
            sent.append(
                await self.producer.send(
                    topic,
                    value=message.value,
                    key=message.key,
                    partition=home,
                    timestamp_ms=round(message.timestamp * 1000),
                    headers=[(FORWARDED_FROM, f"{partition}:{message.offset}".encode())],
                )
            )
            self.sent[(partition, home)] = self.sent.get((partition, home), 0) + 1
        return sent

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
