"""tally: C1 tallies from polling stations (TPS) to ClickHouse region totals, through Kafka.

The package is grouped by role, and imports flow one way (checked by import-linter: the contracts in
`pyproject.toml`):

    ops ──> gateways, kafka, read ──> clickhouse ──> core
                                 └──> embedded ──> settings

- `core`: the pure stages of a tally's trip (contract, signatures, validate, revisions, state,
  aggregate, batch, pipeline) and the data they need (reasons, registry, regions). No I/O.
- `kafka`: the worker (faust), bulk consumption, producers, client authentication.
- `clickhouse`: connection and schema, the sink, the registry store, the audit trail.
- `read`: results queries, the API, terminal reports, the page.
- `gateways`: the simulated night (shape, tallies, truth), registry files, the Kemendagri import.
- `ops`: the `tally` command line, demo and bench.
- `embedded`: the local broker and ClickHouse of the embedded default.
"""
