"""The read side: results queries and `verify`, the JSON API and the page, terminal reports.

Reads ClickHouse only; never imports Kafka.
"""
