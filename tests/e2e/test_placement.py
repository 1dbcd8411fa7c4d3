"""A TPS's home partition: Kafka's own default placement, as other clients compute it, and the
pipeline deciding only the records that are home."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from confluent_kafka import Producer
from hypothesis import given
from hypothesis import strategies as st

from streams.core.pipeline import Message, Processor
from streams.core.placement import FORWARDED_FROM, forwarded_from, home_partition, is_home, murmur2
from streams.kafka.produce import partition_count
from tests.factories import signed, small_registry, tally_dict

# Kafka's own test vectors for its Java client (clients/src/test/.../UtilsTest.java, testMurmur2).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_is_the_java_clients():
    assert {key: murmur2(key) for key in JAVA_MURMUR2} == JAVA_MURMUR2


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_home_is_where_aiokafka_puts_a_keyed_record(key, partitions):
    assert murmur2(key) & 0xFFFFFFFF == aiokafka_murmur2(key) & 0xFFFFFFFF
    assert home_partition(key, partitions) == DefaultPartitioner()(
        key, list(range(partitions)), list(range(partitions))
    )


def test_home_is_where_librdkafka_puts_a_key_with_its_murmur2_partitioner(pipeline):
    """librdkafka's `murmur2_random` (the Java-compatible one) places keys as tally's home does; its
    default, `consistent_random` (CRC32), mostly does not: those records are forwarded."""
    import asyncio

    topic = pipeline.topic("tally.submissions")
    n = asyncio.run(partition_count(pipeline.kafka, topic))
    keys = [f"32{i:011d}".encode() for i in range(200)]
    placed: dict[str, dict[bytes, int]] = {}
    for partitioner in ("murmur2_random", "consistent_random"):
        producer = Producer({"bootstrap.servers": pipeline.kafka, "partitioner": partitioner})
        where: dict[bytes, int] = {}
        for key in keys:
            producer.produce(
                topic,
                value=b"{}",
                key=key,
                on_delivery=lambda err, msg, w=where: w.__setitem__(msg.key(), msg.partition()),
            )
        assert producer.flush(15) == 0
        placed[partitioner] = where
    assert placed["murmur2_random"] == {key: home_partition(key, n) for key in keys}
    assert sum(placed["consistent_random"][k] != home_partition(k, n) for k in keys) > len(keys) / 2


def processor() -> Processor:
    p = Processor(lambda: small_registry(), require_signatures=False)
    for partition in range(4):
        p.preload(partition, [], {})
    return p


@given(
    st.lists(
        st.sampled_from(["3171010001001", "3171010001002", "3171010001003", "3273010001001"]),
        min_size=1,
        max_size=30,
    )
)
def test_a_partition_decides_only_the_records_whose_home_it_is(codes):
    p = processor()
    messages = [
        Message(i, orjson.dumps(tally_dict(tps=code)), 0.0, code.encode())
        for i, code in enumerate(codes)
    ]
    for partition in range(4):
        batch = p.process("t", partition, messages, partitions=4)
        decided = [row.src_offset for row in batch.decisions]
        forwarded = [m.offset for _, m in batch.forward]
        assert sorted(decided + forwarded) == list(range(len(codes)))
        assert all(home_partition(codes[o].encode(), 4) == partition for o in decided)
        assert all(home == home_partition(m.key, 4) != partition for home, m in batch.forward)
        assert [
            row.src_offset for row in batch.forwards
        ] == forwarded  # one arrival row per record sent home


def test_a_record_without_a_key_is_decided_where_it_lands():
    assert is_home(None, 3, 8) and is_home(b"", 0, 8)
    batch = processor().process("t", 1, [Message(0, b"{}", 0.0, b"")], partitions=4)
    assert not batch.forward and [row.decision for row in batch.decisions] == ["rejected"]


def test_a_forwarded_copy_names_its_origin_for_the_audit_only():
    p = processor()
    code = "3171010001001"
    home = home_partition(code.encode(), 4)
    event = orjson.dumps(signed(tally_dict(tps=code)))
    via = forwarded_from([(FORWARDED_FROM, b"2:41")])
    batch = p.process("t", home, [Message(7, event, 0.0, code.encode(), via)], partitions=4)
    [row] = batch.decisions
    assert (row.kafka_key, row.forwarded_from) == (code, "2:41")
    assert forwarded_from([("other", b"x")]) == "" and forwarded_from(None) == ""
