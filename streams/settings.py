"""The one place configuration enters: environment variables, overridden by CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from streams.core.seats import DPR_THRESHOLD

SUBMISSIONS = "tally.submissions"
REJECTED = "tally.rejected"


def threshold_of(text: str) -> Fraction:
    """A threshold as an exact fraction of 1 ("0.04" or "4%"); a clear error for anything else."""
    try:
        value = Fraction(text[:-1]) / 100 if text.endswith("%") else Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"TALLY_DPR_THRESHOLD must be a fraction like 0.04 or 4%, not {text!r}"
        ) from None
    if not 0 <= value < 1:
        raise ValueError(f"TALLY_DPR_THRESHOLD must be at least 0 and below 1, not {text!r}")
    return value


def nice_of(text: str) -> int:
    """A nice increment, 0 to 19; a clear error for anything else (a negative one would need
    privileges a worker should not have)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"TALLY_WORKER_NICE must be a whole number 0 to 19, not {text!r}"
        ) from None
    if not 0 <= value <= 19:
        raise ValueError(f"TALLY_WORKER_NICE must be 0 to 19, not {text!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a tally process needs to know about where things are.

    kafka: bootstrap servers; None means "use or start the embedded broker".
    clickhouse: a clickhouse-connect DSN; None means "use or start the embedded ClickHouse".
    data_dir: where embedded servers keep their data and their recorded addresses.
    namespace: a prefix for topic names, the consumer group and nothing else, so that several
        independent pipelines (tests, benchmarks) can share one broker.
    require_signatures: reject tallies without a device signature (UNSIGNED). Signed ones are
        always checked.
    dpr_threshold: the parliamentary threshold of national valid DPR votes a party needs to take
        part in DPR seats ("0.04" in 2024; the Constitutional Court ordered it revised), an exact
        decimal.
    kafka_*: how clients authenticate to Kafka (see `kafka_options`): PLAINTEXT by default;
        SASL_PLAINTEXT / SASL_SSL with SCRAM-SHA-256/512 or PLAIN, and SSL with a CA file.
    operator_key: the file of the operator's Ed25519 key that signs the log's checkpoints (`tally
        keygen` makes one); None: `<data_dir>/operator.key`.
    log_origin: the log's name, first line of every checkpoint and the name of its signing key.
    log: workers keep each applied event as signed, for the transparency log (off: no log can be
        made).
    verify_threads: threads a worker checks Ed25519 signatures on, beside the one that decides
        (libsodium releases the GIL); 1 checks them on the deciding thread.
    insert_deadline_s: the server ends any fenced insert that runs longer (max_execution_time), and
        a worker that takes a partition over from an owner that did not release it waits this long,
        plus the server's HTTP receive timeout and a margin, before reading its state
        (docs/exactly-once.md).
    receive_timeout_s: the server's http_receive_timeout (deploy/clickhouse/users.d/tally.xml): how
        long it waits for the next bytes of an insert's body before it ends the insert.
    clickhouse_handles: chDB handles the embedded ClickHouse runs statements on, side by side.
    stream_stall_s: the embedded ClickHouse gives up a streaming reader (an export) that takes
        nothing for this long, so that one that stopped reading holds no stream for ever.
    header_timeout_s: `tally serve` closes a connection whose request's headers are not in this long
        after it opened or after its previous answer (read.slow_clients).
    worker_nice: how much lower a worker's CPU priority is than the other processes' (a nice
        increment, 0 to 19). Where workers share cores with the API and ClickHouse (the embedded
        default) an operator may give readers the cores first; the count then takes what readers
        leave, so a flood of reads slows it (benchmarks/RESULTS.md measures both sides). On a
        machine of its own a worker competes with nothing and the increment changes nothing.
    cluster: the ClickHouse cluster (one shard, replicas) the tables live on: `init` creates them
        ON CLUSTER as Replicated tables, and workers insert with a quorum (clickhouse.schema,
        .sink).
    """

    kafka: str | None = None
    clickhouse: str | None = None
    data_dir: Path = Path(".tally")
    partitions: int = 8
    namespace: str = ""
    # Tansu holds a first JoinGroup for the whole rebalance timeout: keep it short.
    rebalance_timeout_s: float = 5.0
    batch_size: int = 5000
    require_signatures: bool = True
    dpr_threshold: Fraction = DPR_THRESHOLD
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_ca_file: str | None = None
    operator_key: str | None = None
    log_origin: str = "tally/pemilu"
    log: bool = True
    verify_threads: int = 2
    insert_deadline_s: float = 15.0
    receive_timeout_s: float = 10.0
    clickhouse_handles: int = 4
    cluster: str | None = None
    stream_stall_s: float = 30.0
    header_timeout_s: float = 10.0
    worker_nice: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            kafka=env.get("TALLY_KAFKA") or None,
            clickhouse=env.get("TALLY_CLICKHOUSE") or None,
            data_dir=Path(env.get("TALLY_DATA_DIR") or ".tally"),
            partitions=int(env.get("TALLY_PARTITIONS") or 8),
            namespace=env.get("TALLY_NAMESPACE") or "",
            require_signatures=(env.get("TALLY_REQUIRE_SIGNATURES") or "1").lower()
            not in ("0", "false", "no"),
            dpr_threshold=threshold_of(env["TALLY_DPR_THRESHOLD"])
            if env.get("TALLY_DPR_THRESHOLD")
            else DPR_THRESHOLD,
            kafka_security_protocol=env.get("TALLY_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            kafka_sasl_mechanism=env.get("TALLY_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512",
            kafka_username=env.get("TALLY_KAFKA_USERNAME") or None,
            kafka_password=env.get("TALLY_KAFKA_PASSWORD") or None,
            kafka_ca_file=env.get("TALLY_KAFKA_CA_FILE") or None,
            operator_key=env.get("TALLY_OPERATOR_KEY") or None,
            log_origin=env.get("TALLY_LOG_ORIGIN") or "tally/pemilu",
            log=(env.get("TALLY_LOG") or "1").lower() not in ("0", "false", "no"),
            verify_threads=max(1, int(env.get("TALLY_VERIFY_THREADS") or 2)),
            insert_deadline_s=float(env.get("TALLY_INSERT_DEADLINE_S") or 15.0),
            receive_timeout_s=float(env.get("TALLY_RECEIVE_TIMEOUT_S") or 10.0),
            clickhouse_handles=max(1, int(env.get("TALLY_CLICKHOUSE_HANDLES") or 4)),
            cluster=env.get("TALLY_CLUSTER") or None,
            stream_stall_s=float(env.get("TALLY_STREAM_STALL_S") or 30.0),
            header_timeout_s=float(env.get("TALLY_HEADER_TIMEOUT_S") or 10.0),
            worker_nice=nice_of(env.get("TALLY_WORKER_NICE") or "0"),
        )

    def as_env(self) -> dict[str, str]:
        """The environment that gives a child `tally` process these settings (the inverse of
        from_env)."""
        return {
            "TALLY_KAFKA": self.kafka or "",
            "TALLY_CLICKHOUSE": self.clickhouse or "",
            "TALLY_DATA_DIR": str(self.data_dir),
            "TALLY_NAMESPACE": self.namespace,
            "TALLY_PARTITIONS": str(self.partitions),
            "TALLY_REQUIRE_SIGNATURES": "1" if self.require_signatures else "0",
            "TALLY_DPR_THRESHOLD": str(float(self.dpr_threshold)),
            "TALLY_KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol,
            "TALLY_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "TALLY_KAFKA_USERNAME": self.kafka_username or "",
            "TALLY_KAFKA_PASSWORD": self.kafka_password or "",
            "TALLY_KAFKA_CA_FILE": self.kafka_ca_file or "",
            "TALLY_OPERATOR_KEY": self.operator_key or "",
            "TALLY_LOG_ORIGIN": self.log_origin,
            "TALLY_LOG": "1" if self.log else "0",
            "TALLY_VERIFY_THREADS": str(self.verify_threads),
            "TALLY_INSERT_DEADLINE_S": str(self.insert_deadline_s),
            "TALLY_RECEIVE_TIMEOUT_S": str(self.receive_timeout_s),
            "TALLY_CLICKHOUSE_HANDLES": str(self.clickhouse_handles),
            "TALLY_CLUSTER": self.cluster or "",
            "TALLY_STREAM_STALL_S": str(self.stream_stall_s),
            "TALLY_HEADER_TIMEOUT_S": str(self.header_timeout_s),
            "TALLY_WORKER_NICE": str(self.worker_nice),
        }

    def override(self, **flags: object) -> Settings:
        """Apply CLI flags that were given (None means the flag was not given)."""
        given = {k: v for k, v in flags.items() if v is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(str(given["data_dir"]))
        return replace(self, **given)

    @property
    def operator_key_file(self) -> Path:
        return Path(self.operator_key) if self.operator_key else self.data_dir / "operator.key"

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def group_id(self) -> str:
        return f"{self.namespace}tally-worker"

    @property
    def embedded_dir(self) -> Path:
        return self.data_dir.resolve()
