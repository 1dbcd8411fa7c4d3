"""The options every `tally` command shares, and how flags become the settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.settings import Settings

KafkaOpt = Annotated[
    str | None,
    typer.Option(
        "--kafka", help="Kafka bootstrap servers [env TALLY_KAFKA]; unset: embedded broker"
    ),
]
ClickHouseOpt = Annotated[
    str | None,
    typer.Option(
        "--clickhouse", help="clickhouse-connect DSN [env TALLY_CLICKHOUSE]; unset: embedded"
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="data dir of the embedded servers [env TALLY_DATA_DIR, default .tally]"
    ),
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option("--namespace", help="prefix of topics and consumer group [env TALLY_NAMESPACE]"),
]


def settings_from(
    kafka: str | None = None,
    clickhouse: str | None = None,
    data_dir: Path | None = None,
    namespace: str | None = None,
    **more: object,
) -> Settings:
    """The settings of the environment with the flags given; on a data dir whose night is remembered
    (`tally demo`), that night's topics when neither a ClickHouse nor a namespace is configured."""
    from streams.embedded.servers import remembered_night

    settings = Settings.from_env().override(
        kafka=kafka, clickhouse=clickhouse, data_dir=data_dir, namespace=namespace, **more
    )
    night = None if settings.clickhouse or settings.namespace else remembered_night(settings)
    return settings.override(namespace=night["namespace"]) if night else settings


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
