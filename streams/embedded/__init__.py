"""The embedded default: a local Kafka-compatible broker and a local ClickHouse server on loopback.

Every other tally process reaches them over the network exactly as it would reach production
Kafka and a ClickHouse server; only the addresses differ.
"""
