"""The one place configuration enters: environment variables, overridden by CLI flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

SUBMISSIONS = "tally.submissions"
REJECTED = "tally.rejected"


@dataclass(frozen=True)
class Settings:
    """Everything a tally process needs to know about where things are.

    kafka: bootstrap servers; None means "use or start the embedded broker".
    clickhouse: a clickhouse-connect DSN; None means "use or start the embedded ClickHouse".
    data_dir: where embedded servers keep their data and their recorded addresses.
    namespace: a prefix for topic names, the consumer group and nothing else, so that several
        independent pipelines (tests, benchmarks) can share one broker.
    """

    kafka: str | None = None
    clickhouse: str | None = None
    data_dir: Path = Path(".tally")
    partitions: int = 8
    namespace: str = ""
    # Tansu holds a first JoinGroup for the whole rebalance timeout: keep it short.
    rebalance_timeout_s: float = 5.0
    batch_size: int = 5000
    batch_within_s: float = 0.2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            kafka=env.get("TALLY_KAFKA") or None,
            clickhouse=env.get("TALLY_CLICKHOUSE") or None,
            data_dir=Path(env.get("TALLY_DATA_DIR") or ".tally"),
            partitions=int(env.get("TALLY_PARTITIONS") or 8),
            namespace=env.get("TALLY_NAMESPACE") or "",
        )

    def as_env(self) -> dict[str, str]:
        """The environment that gives a child `tally` process these settings (the inverse of from_env)."""
        return {
            "TALLY_KAFKA": self.kafka or "",
            "TALLY_CLICKHOUSE": self.clickhouse or "",
            "TALLY_DATA_DIR": str(self.data_dir),
            "TALLY_NAMESPACE": self.namespace,
            "TALLY_PARTITIONS": str(self.partitions),
        }

    def override(self, **flags: object) -> Settings:
        """Apply CLI flags that were given (None means the flag was not given)."""
        given = {k: v for k, v in flags.items() if v is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(str(given["data_dir"]))
        return replace(self, **given)

    def topic(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def group_id(self) -> str:
        return f"{self.namespace}tally-worker"

    @property
    def embedded_dir(self) -> Path:
        return self.data_dir.resolve()
