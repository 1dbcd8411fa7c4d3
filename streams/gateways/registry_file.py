"""Registry files (schemas/registry.v1.schema.json): JSON Lines read and written a record at a time,
so a national registry (820k TPS and their device keys) never sits in memory whole."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import jsonschema
import orjson

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "registry.v1.schema.json"


def read_records(path: Path) -> Iterator[dict]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc


def write_records(path: Path, records: Iterable[dict]) -> int:
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record) + b"\n")
            count += 1
    return count


def contest_errors(records: Iterable[dict], most: int = 20) -> list[str]:
    """What is wrong with the contest records, by registry.v1 (e.g. a legislative contest without
    `seats`), checked before anything is replaced. Contests only: a national registry has ~2,700 of
    them but 1.6M TPS and key records, whose own checks run as they load."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors: list[str] = []
    for record in records:
        if record.get("type") == "contest" and not validator.is_valid(record):
            name = record.get("dapil", "?")
            if record.get("ballot") not in (None, "PPWP") and "seats" not in record:
                errors.append(f"contest {name}: seats is required for a {record['ballot']} contest")
            else:
                errors.append(
                    f"contest {name}: not a registry.v1 contest ({_first_error(validator, record)})"
                )
            if len(errors) >= most:
                break
    return errors


def _first_error(validator: jsonschema.Draft202012Validator, record: dict) -> str:
    error = jsonschema.exceptions.best_match(validator.iter_errors(record))
    return f"{error.json_path}: {error.message}" if error else "invalid"
