"""Start, find and stop the embedded servers; their addresses are recorded in the data dir.

`<data dir>/broker.json` and `<data dir>/clickhouse.json` hold {"pid": .., "address": ..}. A command
that needs a server reads the file; if the process is gone it starts one in the background
(`tally broker` / `tally clickhouse` as a detached child) and waits until it answers.

The embedded ClickHouse has two users, made at its first start with random passwords in `<data
dir>/clickhouse-users.json` (readable by its owner only): `tally_writer` for what writes (the
workers, the log's appender, `init`, registry loads) and `tally_reader`, read-only, for what only
reads (`tally serve`, results, exports, status, the log's proofs). A process without them is
refused."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from streams.settings import Settings

BROKER = "broker"
CLICKHOUSE = "clickhouse"
USERS = "clickhouse-users.json"
# the night a data dir's commands read when none is configured (`tally demo` writes it)
NIGHT = "night.json"
WRITER, READER = "tally_writer", "tally_reader"


class EmbeddedError(RuntimeError):
    """An embedded server cannot run: the message says what to do."""


@dataclass(frozen=True)
class Running:
    pid: int
    address: str  # host:port for the broker, http://host:port for ClickHouse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise EmbeddedError(
                f"port 127.0.0.1:{port} is taken ({exc.strerror}); pick another with --port"
            ) from exc


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def record_path(settings: Settings, name: str) -> Path:
    return settings.embedded_dir / f"{name}.json"


def write_record(settings: Settings, name: str, running: Running) -> None:
    settings.embedded_dir.mkdir(parents=True, exist_ok=True)
    tmp = record_path(settings, name).with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"pid": running.pid, "address": running.address}))
    tmp.replace(record_path(settings, name))


def clear_record(settings: Settings, name: str, pid: int) -> None:
    path = record_path(settings, name)
    found = read_record(settings, name, require_alive=False)
    if found is not None and found.pid == pid:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0): look at its state.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_record(settings: Settings, name: str, require_alive: bool = True) -> Running | None:
    path = record_path(settings, name)
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    running = Running(pid=int(raw["pid"]), address=str(raw["address"]))
    if require_alive and not _alive(running.pid):
        return None
    return running


def _host_port(name: str, address: str) -> tuple[str, int]:
    hostport = address.split("//", 1)[-1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def clickhouse_users(settings: Settings) -> dict[str, str]:
    """The embedded ClickHouse's users and their passwords, made (mode 0600) if there are none
    yet."""
    path = settings.embedded_dir / USERS
    settings.embedded_dir.mkdir(parents=True, exist_ok=True)
    # the first to start makes them; the others read them
    with contextlib.suppress(FileExistsError):
        made = orjson.dumps({WRITER: secrets.token_urlsafe(24), READER: secrets.token_urlsafe(24)})
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(made)
    return orjson.loads(path.read_bytes())


def credited(address: str, user: str, password: str) -> str:
    """`http://host:port` as `http://user:password@host:port`."""
    scheme, _, rest = address.partition("://")
    return f"{scheme}://{user}:{password}@{rest.rsplit('@', 1)[-1]}"


def read_only(settings: Settings, dsn: str) -> str:
    """The DSN as the embedded ClickHouse's read-only user: for a process that only reads. A DSN of
    another server (production: its own users, deploy/clickhouse/users.d) is returned as it is."""
    if not (settings.embedded_dir / USERS).exists():
        return dsn
    users = clickhouse_users(settings)
    scheme, _, rest = dsn.partition("://")
    if not rest.startswith(f"{WRITER}:{users[WRITER]}@"):  # not this data dir's embedded server
        return dsn
    return credited(f"{scheme}://{rest.split('@', 1)[1]}", READER, users[READER])


def ensure(settings: Settings, name: str, timeout_s: float = 60.0) -> str:
    """The address of the embedded server `name`, starting it in the background if none runs (for
    ClickHouse, with the writer's credentials in it)."""
    found = read_record(settings, name)
    if found is not None and port_open(*_host_port(name, found.address)):
        return _for_clients(settings, name, found.address)
    settings.embedded_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.embedded_dir / f"{name}.log").open("ab")
    cmd = [sys.executable, "-m", "streams", name, "--data-dir", str(settings.embedded_dir)]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (settings.embedded_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            raise EmbeddedError(f"embedded {name} exited with {proc.returncode}:\n{tail}")
        found = read_record(settings, name)
        if (
            found is not None
            and found.pid == proc.pid
            and port_open(*_host_port(name, found.address))
        ):
            return _for_clients(settings, name, found.address)
        time.sleep(0.05)
    proc.terminate()
    raise EmbeddedError(f"embedded {name} did not answer within {timeout_s:.0f}s; see {log.name}")


def _for_clients(settings: Settings, name: str, address: str) -> str:
    if name != CLICKHOUSE:
        return address
    return credited(address, WRITER, clickhouse_users(settings)[WRITER])


def stop(settings: Settings, name: str, timeout_s: float = 20.0) -> bool:
    """Stop the recorded server `name`; True if one was running."""
    found = read_record(settings, name)
    if found is None:
        record_path(settings, name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(found.pid):
        time.sleep(0.05)
    if _alive(found.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.pid, signal.SIGKILL)
    record_path(settings, name).unlink(missing_ok=True)
    return True


def kafka_bootstrap(settings: Settings) -> str:
    return settings.kafka or ensure(settings, BROKER)


def remember_night(settings: Settings, database: str, namespace: str) -> Path:
    """Make this night (a ClickHouse database of the embedded server, a namespace of topics) the one
    this data dir's commands read when neither TALLY_CLICKHOUSE nor TALLY_NAMESPACE is set."""
    path = settings.embedded_dir / NIGHT
    path.write_bytes(orjson.dumps({"database": database, "namespace": namespace}))
    return path


def remembered_night(settings: Settings) -> dict[str, str] | None:
    """The night `remember_night` recorded in this data dir, if any."""
    try:
        night = orjson.loads((settings.embedded_dir / NIGHT).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return night if isinstance(night, dict) and {"database", "namespace"} <= night.keys() else None


def clickhouse_dsn(settings: Settings) -> str:
    """The configured DSN, or the embedded ClickHouse's as its writer (its database the remembered
    night's, else `default`). A configured DSN without a user that names the embedded server of this
    data dir gets the writer's credentials too."""
    if settings.clickhouse:
        found = read_record(settings, CLICKHOUSE)
        if (
            found is not None
            and "@" not in settings.clickhouse
            and settings.clickhouse.startswith(found.address + "/")
        ):
            return (
                _for_clients(settings, CLICKHOUSE, found.address)
                + settings.clickhouse[len(found.address) :]
            )
        return settings.clickhouse
    night = remembered_night(settings)
    return ensure(settings, CLICKHOUSE) + "/" + (night["database"] if night else "default")


def without_credentials(dsn: str) -> str:
    """A DSN fit to print: user and password left out (the embedded server's are in its users
    file)."""
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def fresh_pipeline(base: Settings, run: str) -> Settings:
    """Settings of a new, isolated pipeline named `run` on the configured or embedded servers: its
    own topics and consumer group (namespace) and its own ClickHouse database."""
    kafka = kafka_bootstrap(base)
    server = base.clickhouse.rsplit("/", 1)[0] if base.clickhouse else ensure(base, CLICKHOUSE)
    return base.override(kafka=kafka, clickhouse=f"{server}/{run}", namespace=f"{run}.")
