"""What the embedded ClickHouse refuses to run, whoever asks.

chDB has no users or grants: whatever reaches `tally clickhouse` runs with the engine's full power,
which includes reading and writing any file the process may (`file()`, `INTO OUTFILE`, `FROM
INFILE`, the File engine), fetching URLs and other hosts (`url()`, `s3()`, `remote()`, `mysql()`
..), and running programs (`executable()`). tally needs none of that, so none of it runs. A
ClickHouse server governs the same with grants on sources (`FILE`, `URL`, `REMOTE` ..), which
tally's users lack (deploy/clickhouse/users.d/tally.xml).

Also as on a server: one statement a request (chDB alone would run `SELECT 1; DROP TABLE t`), and a
GET runs only what reads (a web page in a browser on this machine can send a GET, not a POST with
our body). The check reads the statement as ClickHouse's lexer does, around string literals, quoted
names and comments, so that neither hides a name nor makes one up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from streams.embedded.schema_files import own_statements

READS = frozenset({"select", "with", "show", "describe", "desc", "exists", "explain"})
REFUSED_STATEMENTS = frozenset(
    {"system", "attach", "detach", "backup", "restore", "kill", "grant", "revoke"}
)
# Table functions, table engines and dictionary sources that reach files, URLs, other hosts or
# programs.
REFUSED_SOURCES = frozenset(
    {
        "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn",
        "hdfs", "hdfscluster", "azureblobstorage", "azureblobstoragecluster", "remote",
        "remotesecure", "cluster", "clusterallreplicas", "mysql", "postgresql", "mongodb",
        "redis", "sqlite", "jdbc", "odbc", "executable", "executablepool", "kafka", "rabbitmq",
        "nats", "distributed", "http", "arrowflight", "ytsaurus", "prometheusquery",
    }
)  # fmt: skip
REFUSED_PREFIXES = ("iceberg", "deltalake", "hudi", "paimon", "datalake")
# Settings nobody may change, in a statement (SET, SETTINGS) or a request's parameters. What a TPS
# page shows of a row is derived by the server from the row's own columns (schemas/clickhouse/012_
# tps_pages.sql, MATERIALIZED in databases made before 014); with this setting a writer could send
# such a column, and a page would say other than the row. A server's profile holds it const
# (deploy/clickhouse/users.d/tally.xml).
LOCKED_SETTINGS = frozenset({"insert_allow_materialized_columns"})
# What only the server writes: the page table, the views that copy rows into it as they are written
# (schemas/clickhouse/014_tps_pages_table.sql) and the entries of the rows they copy (012). A
# statement that wrote the table, changed a view or an entry's expression would make a page say
# other than the rows; what may run on them is a read, a DROP of a table, view or column (which
# hides, never forges), and `tally init`'s own statements, word for word.
DERIVED = frozenset(
    {
        "tps_pages", "tps_pages_of_tallies", "tps_pages_of_decisions", "tps_pages_of_forwards",
        "tally_entry", "trail_entry",
    }
)  # fmt: skip
_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)|(?P<string>'(?:[^'\\]|\\.)*'?)"""
    r"""|(?P<quoted>`(?:[^`\\]|\\.)*`?|"(?:[^"\\]|\\.)*"?)|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<other>.)""",
    re.DOTALL,
)


class Refused(ValueError):
    """A statement the embedded ClickHouse does not run: the message is ClickHouse's form of it."""


def words(sql: str) -> list[str]:
    """The statement's names and symbols outside literals and comments, names lowercased (a quoted
    name unquoted), symbols as they are."""
    out = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == "word":
            out.append(match.group().lower())
        elif kind == "quoted":
            out.append(match.group()[1:-1].lower())
        elif kind == "other":
            out.append(match.group())
    return out


def check_statement(sql: str, method: str) -> None:
    """Raise Refused if the embedded ClickHouse must not run `sql` (one request's statement) for a
    request of `method`."""
    tokens = words(sql)
    while tokens and tokens[-1] == ";":
        tokens.pop()
    if ";" in tokens:
        raise Refused("Code: 62. DB::Exception: Multi-statements are not allowed. (SYNTAX_ERROR)")
    first = next((t for t in tokens if t != "("), "")
    if first in REFUSED_STATEMENTS:
        raise Refused(
            f"Code: 497. DB::Exception: {first.upper()} statements are not allowed here. "
            "(ACCESS_DENIED)"
        )
    if method == "GET" and first not in READS:
        raise Refused(
            "Code: 164. DB::Exception: Cannot execute query in readonly mode: a GET request and a "
            "read-only user only read. "
            "(READONLY)"
        )
    check_settings(t for t in tokens if t in LOCKED_SETTINGS)
    derived = DERIVED.intersection(tokens)
    if derived and not _hides(first, tokens) and tuple(tokens) not in _own():
        raise Refused(
            f"Code: 497. DB::Exception: {min(derived)} is derived by the server alone (what a TPS "
            "page shows): a statement that writes it or changes how it is derived would make a "
            "page say other than its rows. (ACCESS_DENIED)"
        )
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        engine = i > 1 and tokens[i - 1] == "=" and tokens[i - 2] == "engine"
        if token == "buffer" and engine:
            # A Buffer table writes into the table it names, which may be spelled as any string.
            raise Refused(
                "Code: 497. DB::Exception: the Buffer engine writes into another table: not "
                "allowed for tally's users. (ACCESS_DENIED)"
            )
        if token in ("outfile", "infile") and i and tokens[i - 1] in ("into", "from"):
            clause = f"{tokens[i - 1].upper()} {token.upper()}"
            raise Refused(
                f"Code: 497. DB::Exception: {clause} is not allowed here. (ACCESS_DENIED)"
            )
        refused = token in REFUSED_SOURCES or token.startswith(REFUSED_PREFIXES)
        if refused and (following == "(" or engine):
            raise Refused(
                f"Code: 497. DB::Exception: {token} reaches files, URLs, other hosts or programs: "
                "not allowed for tally's users. (ACCESS_DENIED)"
            )


def _hides(first: str, tokens: list[str]) -> bool:
    """A read, a DROP, or an ALTER TABLE whose one clause drops a column: what shows less, never
    other (`first`: the statement's first word)."""
    if first in READS or first == "drop":
        return True
    if tokens[:2] != ["alter", "table"] or "drop" not in tokens:
        return False
    at = tokens.index("drop")
    name, clause = tokens[2:at], tokens[at + 1 :]
    if clause[1:3] == ["if", "exists"]:
        clause = [clause[0], *clause[3:]]
    one_name = len(name) == 1 or (len(name) == 3 and name[1] == ".")
    return one_name and len(clause) == 2 and clause[0] == "column"


@cache
def _own() -> frozenset[tuple[str, ...]]:
    """The words of each statement `tally init` runs, its trailing ';' dropped."""
    return frozenset(tuple(words(s.rstrip().rstrip(";"))) for s in own_statements())


def check_settings(names: Iterable[str]) -> None:
    """Raise Refused if any of `names` (settings a request would set) is locked."""
    for name in names:
        if name.lower() in LOCKED_SETTINGS:
            raise Refused(
                f"Code: 452. DB::Exception: Setting {name} should not be changed. "
                "(SETTING_CONSTRAINT_VIOLATION)"
            )
