"""tally: C1 tallies from polling stations (TPS) to ClickHouse region totals, through Kafka.

The package follows the data's trip, one module per stage:
contract (decode) -> validate -> revisions (dedupe/correct) -> aggregate -> sink (ClickHouse) -> read.
The edges: worker (faust), produce/simulate (gateways), embedded (local broker and ClickHouse), cli.
"""
