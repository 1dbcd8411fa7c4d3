"""The ClickHouse edge: connection and schema, the sink (fenced, idempotent inserts), the registry
store and the audit trail queries. Everything here goes through clickhouse-connect."""
