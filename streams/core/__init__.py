"""The pure core: a tally's trip as plain functions over plain data, no Kafka, no ClickHouse, no
files.

contract (decode) -> signatures (authenticate) -> validate -> revisions and state (dedupe, correct)
-> aggregate -> batch; `pipeline` runs one partition's batch through them. `reasons`, `registry`
and `regions` are the data the stages share. Imports nothing of the edges nor the settings.
"""
