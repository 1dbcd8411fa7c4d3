"""`verify` of the fine levels in ClickHouse: the truth's TPS loaded beside the totals and compared
there.

Held in Python, a national five-ballot night's TPS level is 4.1M dicts on each side (the truth's and
ClickHouse's), and verify took 7.5 minutes. Here the truth's TPS (`truth-tps.jsonl`: counts in the
order of their dapil's choices) go into a scratch table, and each ballot is compared in three
statements:
  * TPS: each TPS's change rows (region_totals at level tps) against its truth, as a linear
    fingerprint: the sum over choices of votes x a 64-bit hash of the choice code, exact in Int128.
    Being linear, it is summed over a TPS's change rows like any count (no map is merged: that took
    12 s a legislative ballot nationally, this 1 s), zero votes add nothing, and two TPS that differ
    by any vector of votes have the same fingerprint with a chance of about 2^-64. Invalid and
    tps_reported are compared beside it;
  * village and district: tps_reported, invalid and all votes summed by code prefix, so a TPS
    counted in another region's place shows there too.
Only the differing TPS (at most `max_report`) are read back whole, to say what differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from streams.core.aggregate import TPS_LEVEL
from streams.core.regions import PREFIX_LENGTH
from streams.read.totals import region_sums

CHUNK_BYTES = 32 << 20  # one insert's body: whole lines, well under any HTTP body limit
# A TPS's votes as one number: sum of votes x hash(choice), over `choices` and `votes` (arrays).
FINGERPRINT = "arraySum((choice, n) -> toInt128(n) * cityHash64(choice), {choices}, {votes})"


def _chunks(path: Path, progress: Callable[[int], object] | None) -> Iterator[bytes]:
    done = 0
    with path.open("rb") as lines:
        while chunk := lines.read(CHUNK_BYTES):
            chunk += lines.readline()  # end on a whole line
            done += len(chunk)
            if progress is not None:
                progress(done)
            yield chunk


class TruthTable:
    """The truth's TPS and the choices of their dapils, in scratch tables of the tally database that
    live as long as the `with` block (a unique name: two verifies may run at once)."""

    def __init__(self, client: Client, choices: dict[str, dict[str, list[str]]]) -> None:
        self.client = client
        self.choices = choices  # ballot -> dapil -> choice codes
        self.name = f"verify_truth_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> TruthTable:
        self.client.command(
            f"CREATE TABLE {self.name} (ballot LowCardinality(String), tps String, event_id "
            "String, dapil String, "
            "counts Array(UInt32), invalid UInt32) ENGINE = MergeTree ORDER BY (ballot, tps)"
        )
        self.client.command(
            f"CREATE TABLE {self.name}_choices (ballot LowCardinality(String), dapil String, "
            "choices Array(String)) "
            "ENGINE = MergeTree ORDER BY (ballot, dapil)"
        )
        rows = [(b, d, c) for b, dapils in self.choices.items() for d, c in dapils.items()]
        if rows:
            self.client.insert(
                f"{self.name}_choices", rows, column_names=["ballot", "dapil", "choices"]
            )
        return self

    def __exit__(self, *_: object) -> None:
        for table in (self.name, f"{self.name}_choices"):
            self.client.command(f"DROP TABLE IF EXISTS {table}")

    def load(self, path: Path, progress: Callable[[int], object] | None = None) -> None:
        for chunk in _chunks(path, progress):
            self.client.raw_insert(self.name, insert_block=chunk, fmt="JSONEachRow")

    def differences(self, ballot: str, max_report: int) -> list[str]:
        """What differs between the truth and ClickHouse at the TPS, village and district levels of
        a ballot."""
        found = self._tps_differences(ballot, max_report)
        for level in ("village", "district"):
            found += self._region_differences(ballot, level, max_report)
        return found

    def _tps_differences(self, ballot: str, max_report: int) -> list[str]:
        want = FINGERPRINT.format(choices="c.choices", votes="t.counts")
        got = FINGERPRINT.format(choices="mapKeys(moved)", votes="mapValues(moved)")
        sql = (
            f"SELECT tps FROM (SELECT t.tps AS tps, {want} AS fp, toInt64(t.invalid) AS invalid, "
            "toInt64(1) AS reported "
            f"FROM {self.name} AS t INNER JOIN {self.name}_choices AS c ON t.ballot = c.ballot AND "
            "t.dapil = c.dapil "
            "WHERE t.ballot = {b:String}) AS want "
            f"FULL OUTER JOIN (SELECT region AS tps, sum({got}) AS fp, sum(invalid) AS invalid, "
            "sum(tps_reported) AS reported "
            f"FROM region_totals WHERE ballot = {{b:String}} AND level = '{TPS_LEVEL}' GROUP BY "
            "tps) "
            "AS got USING tps WHERE want.fp != got.fp OR want.invalid != got.invalid OR "
            "want.reported != got.reported "
            "ORDER BY tps LIMIT {n:UInt32}"
        )
        codes = [tps for (tps,) in self._query(sql, ballot, max_report)]
        return [line for tps in codes for line in self._tps_detail(ballot, tps)]

    def _tps_detail(self, ballot: str, tps: str) -> list[str]:
        rows = self.client.query(
            f"SELECT c.choices, t.counts, t.invalid FROM {self.name} AS t INNER JOIN "
            f"{self.name}_choices AS c "
            "ON t.ballot = c.ballot AND t.dapil = c.dapil WHERE t.ballot = {b:String} AND t.tps = "
            "{tps:String}",
            parameters={"b": ballot, "tps": tps},
        ).result_rows
        want = {"votes": {}, "invalid": 0, "tps_reported": 0}
        if rows:
            choices, counts, invalid = rows[0]
            want = {
                "votes": {c: n for c, n in zip(choices, counts, strict=True) if n},
                "invalid": invalid,
                "tps_reported": 1,
            }
        got = region_sums(self.client, ballot, TPS_LEVEL, tps)[0].get(
            tps, {"votes": {}, "invalid": 0, "tps_reported": 0}
        )
        return [
            f"{ballot} tps {tps} {field}: expected {want[field]}, ClickHouse has {got.get(field)}"
            for field in ("votes", "invalid", "tps_reported")
            if want[field] != got.get(field)
        ] or [f"{ballot} tps {tps}: differs (same sums, other choices)"]

    def _region_differences(self, ballot: str, level: str, max_report: int) -> list[str]:
        width = PREFIX_LENGTH[level]
        sql = (
            "SELECT code, want.reported, got.reported, want.invalid, got.invalid, want.votes, "
            "got.votes FROM ("
            f"SELECT substring(tps, 1, {width}) AS code, toInt64(count()) AS reported, "
            "toInt64(sum(invalid)) AS invalid, "
            f"toInt64(sum(arraySum(counts))) AS votes FROM {self.name} WHERE ballot = {{b:String}} "
            "GROUP BY code) AS want "
            f"FULL OUTER JOIN (SELECT substring(region, 1, {width}) AS code, sum(tps_reported) AS "
            "reported, "
            "sum(invalid) AS invalid, sum(arraySum(mapValues(moved))) AS votes FROM region_totals "
            f"WHERE ballot = {{b:String}} AND level = '{TPS_LEVEL}' GROUP BY code) AS got USING "
            "code "
            "WHERE want.reported != got.reported OR want.invalid != got.invalid OR want.votes != "
            "got.votes "
            "ORDER BY code LIMIT {n:UInt32}"
        )
        found = []
        fields = ("tps_reported", "invalid", "votes (all choices)")
        for code, *pairs in self._query(sql, ballot, max_report):
            for field, want, got in zip(fields, pairs[::2], pairs[1::2], strict=True):
                if want != got:
                    found.append(
                        f"{ballot} {level} {code} {field}: expected {want}, ClickHouse has {got}"
                    )
        return found

    def _query(self, sql: str, ballot: str, limit: int) -> list[tuple]:
        return self.client.query(sql, parameters={"b": ballot, "n": limit}).result_rows


def choices_of(group: dict) -> dict[str, list[str]]:
    """dapil -> choice codes, from a truth "choices" line."""
    return {dapil: list(codes) for dapil, codes in group["choices"].items()}


def tps_truth(truth: Path, tps_file: Path, ballot: str) -> dict[str, dict]:
    """tps -> {votes, invalid, tps_reported} of one ballot, from `truth.jsonl`'s choices and
    `truth-tps.jsonl` (small nights and tests: every TPS becomes a dict)."""
    with truth.open("rb") as lines:
        groups = (orjson.loads(line) for line in lines if b'"level":"choices"' in line)
        choices = next(choices_of(g) for g in groups if g["ballot"] == ballot)
    found = {}
    with tps_file.open("rb") as lines:
        for line in lines:
            row = orjson.loads(line)
            if row["ballot"] == ballot:
                votes = dict(zip(choices[row["dapil"]], row["counts"], strict=True))
                found[row["tps"]] = {"votes": votes, "invalid": row["invalid"], "tps_reported": 1}
    return found
