"""The `tally` command line: one place where flags meet the settings object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streams.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="tally: counts an election night, from gateways through Kafka to ClickHouse.")

KafkaOpt = Annotated[str | None, typer.Option("--kafka", help="Kafka bootstrap servers [env TALLY_KAFKA]; unset: embedded broker")]
ClickHouseOpt = Annotated[str | None, typer.Option("--clickhouse", help="clickhouse-connect DSN [env TALLY_CLICKHOUSE]; unset: embedded")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="data dir of the embedded servers [env TALLY_DATA_DIR, default .tally]")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", help="prefix of topics and consumer group [env TALLY_NAMESPACE]")]


def settings_from(kafka: str | None = None, clickhouse: str | None = None, data_dir: Path | None = None,
                  namespace: str | None = None, **more: object) -> Settings:
    return Settings.from_env().override(kafka=kafka, clickhouse=clickhouse, data_dir=data_dir,
                                        namespace=namespace, **more)


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def broker(data_dir: DataDirOpt = None, port: Annotated[int | None, typer.Option(help="port; default a free one")] = None) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) in the foreground."""
    from streams.embedded.run import run_broker
    from streams.embedded.servers import EmbeddedError

    try:
        raise typer.Exit(run_broker(settings_from(data_dir=data_dir), port))
    except EmbeddedError as exc:
        fail(str(exc))


@app.command()
def clickhouse(data_dir: DataDirOpt = None, port: Annotated[int | None, typer.Option(help="port; default a free one")] = None) -> None:
    """Run the embedded ClickHouse (chDB behind the ClickHouse HTTP interface) in the foreground."""
    from streams.embedded.run import run_clickhouse
    from streams.embedded.servers import EmbeddedError

    try:
        raise typer.Exit(run_clickhouse(settings_from(data_dir=data_dir), port))
    except EmbeddedError as exc:
        fail(str(exc))


@app.command()
def up(data_dir: DataDirOpt = None) -> None:
    """Start the embedded broker and ClickHouse in the background (if not running) and print their addresses."""
    from streams.embedded import servers

    settings = settings_from(data_dir=data_dir)
    try:
        typer.echo(f"kafka      {servers.ensure(settings, servers.BROKER)}")
        typer.echo(f"clickhouse {servers.ensure(settings, servers.CLICKHOUSE)}")
    except servers.EmbeddedError as exc:
        fail(str(exc))


@app.command()
def down(data_dir: DataDirOpt = None) -> None:
    """Stop the embedded servers recorded in the data dir."""
    from streams.embedded import servers

    settings = settings_from(data_dir=data_dir)
    for name in (servers.BROKER, servers.CLICKHOUSE):
        typer.echo(f"{name}: {'stopped' if servers.stop(settings, name) else 'not running'}")


if __name__ == "__main__":
    app()
