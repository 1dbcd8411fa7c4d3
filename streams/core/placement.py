"""Where a TPS's events are decided: its home partition.

A worker decides a (ballot, TPS) only from the state of the partitions it owns, so every event of a
TPS must be decided in one partition, whichever partition the gateway's client put it on. tally
defines that partition itself: `home_partition(tps code, partitions)`, Kafka's own default placement
of a keyed record (the Java client's murmur2, made positive, modulo the partition count), which Java
clients, kafkajs and aiokafka use unchanged. A record found elsewhere (librdkafka's CRC32,
round-robin, random or an explicit partition) is forwarded home before anything about it is decided.
"""

from __future__ import annotations

SEED = 0x9747B28C
M = 0x5BD1E995
MASK = 0xFFFFFFFF
FORWARDED_FROM = (
    "tally-forwarded-from"  # the header a forwarded copy carries: "<partition>:<offset>"
)


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's Java client computes it (`Utils.murmur2`), as a signed 32-bit int."""
    length = len(data)
    h = (SEED ^ length) & MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * M) & MASK
        k ^= k >> 24
        k = (k * M) & MASK
        h = ((h * M) & MASK) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def home_partition(key: bytes, partitions: int) -> int:
    """The partition whose owner decides records keyed `key`: `toPositive(murmur2(key)) %
    partitions`, the placement of Kafka's default partitioner for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def home_of(key: bytes | None, partition: int, partitions: int) -> int:
    """Where a record keyed `key` found at `partition` is decided. A record without a key has no
    home: it cannot name a TPS it would be counted for, so it is decided (rejected) where it
    lands."""
    return home_partition(key, partitions) if key else partition


def is_home(key: bytes | None, partition: int, partitions: int) -> bool:
    """Whether a record keyed `key` found at `partition` is decided there."""
    return home_of(key, partition, partitions) == partition


def forwarded_from(headers: object) -> str:
    """The origin a forwarded copy names ("<partition>:<offset>"), or "" for a record sent directly.
    Only for the audit trail: any producer may set headers, so no decision depends on it."""
    for name, value in headers or ():  # type: ignore[attr-defined]
        if name == FORWARDED_FROM and isinstance(value, bytes | bytearray):
            return bytes(value[:40]).decode("ascii", "replace")
    return ""
