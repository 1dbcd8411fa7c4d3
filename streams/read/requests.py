"""What a request asks, checked: its parameters against the OpenAPI document, its moments, and the
one cache key each question has however it is spelled. An error is an `ApiError`: a status and
words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from aiohttp import web

from streams.core.moments import MomentError, parse_moment
from streams.core.regions import digits
from streams.read.openapi import OPENAPI


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def moment_param(request: web.Request, name: str = "as_of") -> datetime | None:
    """A moment from the query string (None if absent), or a 400 saying what is accepted."""
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse_moment(text)
    except MomentError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def check_request(request: web.Request, path: str) -> None:
    """Every parameter against the OpenAPI document, so the document is the contract and not a wish:
    a parameter the endpoint does not take (a misspelt as_of would otherwise answer the current
    totals as if they were the past), a missing required one, or a value outside its enum, pattern
    or range is a 400 naming it."""
    parameters = OPENAPI["paths"][path]["get"].get("parameters", [])
    allowed = [p["name"] for p in parameters if p["in"] == "query"]
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            f"unknown parameter {', '.join(unknown)}; this endpoint takes "
            f"{', '.join(allowed) or 'none'}",
        )
    for parameter in parameters:
        name = parameter["name"]
        value = (
            request.query.get(name) if parameter["in"] == "query" else request.match_info.get(name)
        )
        if value is None:
            if parameter.get("required"):
                raise ApiError(400, f"{name} is required")
            continue
        problem = violation(value, parameter["schema"])
        if problem:
            raise ApiError(400, f"{name}: {problem}")


def violation(value: str, schema: dict) -> str | None:
    """What is wrong with a parameter's text under its schema (the subset the document uses), or
    None."""
    if "anyOf" in schema:
        problems = [violation(value, option) for option in schema["anyOf"]]
        return None if None in problems else " or ".join(p for p in problems if p)
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(str, schema['enum']))}"
    if schema.get("type") == "integer":
        if not digits(value):
            return "must be a whole number (ASCII digits, at most 18)"
        if not schema.get("minimum", 0) <= int(value) <= schema.get("maximum", int(value)):
            return f"must be between {schema.get('minimum', 0)} and {schema.get('maximum')}"
    if "pattern" in schema and not re.fullmatch(schema["pattern"].strip("^$"), value):
        return f"{value[:40]!r} does not match {schema['pattern']}"
    if schema.get("format") == "date-time":
        try:
            parse_moment(value)
        except MomentError as exc:
            return str(exc)
    return None


def cache_key(path: str, query: Mapping[str, str]) -> str:
    """One entry per question, however it is spelled: parameters in order, whole numbers as numbers
    (`start=0007` is `start=7`)."""
    normal = sorted(
        (name, str(int(value)) if digits(value, 100) else value) for name, value in query.items()
    )
    return path + "?" + "&".join(f"{name}={value}" for name, value in normal)


def results_key(
    ballot: str, level: str | None, region: str | None, as_of: datetime | None = None
) -> str:
    """One cache entry per view, however its query string is spelled."""
    return f"results:{ballot}:{level or ''}:{region or ''}:{as_of or ''}"
