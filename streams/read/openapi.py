"""The read API's contract (OpenAPI 3.1), served at /api/openapi.json and held by schemathesis in
`make test` (tests/e2e/test_api_contract.py): every parameter's enum or pattern, every status an
endpoint answers, and the JSON error shape."""

from __future__ import annotations

from streams.core.contract import BALLOTS
from streams.core.regions import LEVELS
from streams.core.seats import LEGISLATIVE
from streams.read.changes import DEFAULT_LIMIT, MAX_LIMIT
from streams.read.export import FILE_NAMES, FORMATS, SCOPES

REGION = r"^(ID|[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10}|[0-9]{13})$"
TPS = r"^[0-9]{13}$"
DAPIL = r"^[A-Za-z0-9_.-]{1,64}$"
EPOCH = r"^[0-9]{1,10}(\.[0-9]{1,6})?$"
# A cursor: a page's `next` (moment/tps/revision), or a moment alone.
CURSOR = r"^[0-9]{1,17}/[0-9]{13}/[0-9]{1,10}$"  # epoch microseconds / tps / revision
MOMENT = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "pattern": EPOCH}]
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what is wrong, in words"}},
}
OBJECT = {"type": "object"}


# The largest whole number a parameter takes: 18 digits, so that it always fits ClickHouse's UInt64.
MAX_INTEGER = 10**18 - 1


def _json(description: str, schema: dict = OBJECT) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(description, ERROR)


def _query(name: str, schema: dict, description: str = "", required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _get(summary: str, parameters: list[dict], ok: dict, errors: dict[str, str]) -> dict:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {"200": ok, **{status: _error(text) for status, text in errors.items()}},
        }
    }


AS_OF = _query(
    "as_of",
    MOMENT,
    "as the totals stood at this moment: ISO 8601 with an offset, or epoch seconds; before the "
    "first count "
    "gives zeros, a future moment the current totals",
)
BALLOT = _query("ballot", {"type": "string", "enum": list(BALLOTS), "default": "PPWP"})
LEGISLATIVE_BALLOT = _query("ballot", {"type": "string", "enum": list(LEGISLATIVE)}, required=True)
REGION_PARAM = _query(
    "region", {"type": "string", "pattern": REGION}, "a region code, ID for the nation"
)
DAPIL_PARAM = _query("dapil", {"type": "string", "pattern": DAPIL})
REGION_ERRORS = {
    "400": "a malformed parameter, or a dapil of another ballot",
    "404": "an unknown region or dapil, or a dapil of a ballot without dapils (PPWP)",
}

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "tally read API",
        "version": "2",
        "description": "Results, seats and the change feed of an election night, now or as of "
        'any moment; open data exports. Errors are JSON: {"error": message}.',
    },
    "paths": {
        "/api/results": _get(
            "Results of one ballot at one level, within a region (its children, or itself at its "
            "own level), or of one dapil",
            [
                BALLOT,
                _query("level", {"type": "string", "enum": list(LEVELS)}),
                REGION_PARAM,
                _query(
                    "dapil",
                    {"type": "string", "pattern": DAPIL},
                    "one dapil instead of regions (legislative ballots); level and region are then "
                    "not used",
                ),
                AS_OF,
            ],
            _json(
                "as_of (the moment these totals are of: asking for it again gives them back) and "
                "regions with "
                "tps_reported, tps_total, percent_reported, votes (party totals on DPR and DPRD "
                "ballots), valid, "
                "invalid, voters, registered (the DPT of every TPS), registered_reported (the DPT "
                "of the TPS that "
                "reported), turnout (voters over registered_reported, in percent); with dapil: its "
                "name, seats, "
                "parties, candidates"
            ),
            REGION_ERRORS,
        ),
        "/api/tps/{code}": {
            "get": {
                "summary": "One TPS: the applied tally per ballot with its flags, "
                "and its audit trail (as `tally audit`)",
                "parameters": [
                    {
                        "name": "code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": TPS},
                    },
                    _query("ballot", {"type": "string", "enum": list(BALLOTS)}),
                ],
                "responses": {
                    "200": _json("tallies and history"),
                    "400": _error("a malformed code or ballot"),
                    "404": _error("nothing is known of this TPS"),
                },
            }
        },
        "/api/dapils": _get(
            "The dapils of a legislative ballot, or those of a province or regency",
            [LEGISLATIVE_BALLOT, REGION_PARAM],
            _json("dapils: code, name, seats, regions"),
            {"400": "a malformed parameter"},
        ),
        "/api/seats": _get(
            "Provisional seats from the totals, now or at a moment (Sainte-Lague, the DPR "
            "threshold, open lists; DPD: top 4)",
            [LEGISLATIVE_BALLOT, DAPIL_PARAM, AS_OF],
            _json(
                "as_of, threshold, national (party, votes, share, passes, seats), bodies, dapils"
            ),
            REGION_ERRORS,
        ),
        "/api/anomalies": _get(
            "Flagged and rejected events per region, rolled up like the totals, now or at a moment",
            [_query("level", {"type": "string", "enum": list(LEVELS[:-1])}), REGION_PARAM, AS_OF],
            _json("per region: flagged, rejected, by reason and flag"),
            {"400": "a malformed parameter", "404": "an unknown region"},
        ),
        "/api/changes": _get(
            "Every change that moved a region's or dapil's totals, in the order it became visible, "
            "with the reason",
            [
                BALLOT,
                REGION_PARAM,
                _query(
                    "dapil",
                    {"type": "string", "pattern": DAPIL},
                    "within this dapil (and the region, if given)",
                ),
                _query(
                    "since",
                    {
                        "anyOf": [
                            MOMENT["anyOf"][0],
                            MOMENT["anyOf"][1],
                            {"type": "string", "pattern": CURSOR},
                        ]
                    },
                    "after this cursor (a page's next) or moment; with order=desc, before it",
                ),
                _query("until", MOMENT, "none after this moment"),
                _query(
                    "limit",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                ),
                _query(
                    "order",
                    {"type": "string", "enum": ["asc", "desc"], "default": "asc"},
                    "desc: newest first",
                ),
            ],
            _json(
                "changes (tps, ballot, event_id, gateway, kind: first count or correction, "
                "revision old -> new, votes "
                "and parties deltas, invalid, voters, tps_reported, decided_at) and next, the "
                "cursor to go on from"
            ),
            REGION_ERRORS,
        ),
        "/api/export/{ballot}/{scope}/{file}": {
            "get": {
                "summary": "Open data: one file of the results of a ballot at a level "
                "(or per dapil), as of a moment, streamed; "
                "MANIFEST.json lists each file's SHA-256 and row count",
                "parameters": [
                    {
                        "name": "ballot",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(BALLOTS)},
                    },
                    {
                        "name": "scope",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(SCOPES)},
                    },
                    {
                        "name": "file",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(FILE_NAMES)},
                    },
                    _query("as_of", MOMENT, "the moment (default: when the export starts)"),
                    _query(
                        "format",
                        {"type": "string", "enum": list(FORMATS), "default": "csv"},
                        "the files MANIFEST.json describes",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "application/vnd.apache.parquet": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "application/json": {"schema": OBJECT},
                        },
                    },
                    "400": _error("a malformed parameter"),
                    "404": _error("no such export: dapils of a ballot without dapils (PPWP)"),
                    "503": _error(
                        "as many exports as the server streams at once are running: try again "
                        "after Retry-After"
                    ),
                },
            }
        },
        "/api/log/checkpoints": _get(
            "The transparency log's signed checkpoints, newest first (tree size, root hash, the "
            "moment of its last "
            "leaf, the signed note with the national totals of its leaves, the operator's verifier "
            "key)",
            [],
            _json("checkpoints"),
            {"400": "a parameter it does not take"},
        ),
        "/api/log/leaves": _get(
            "Leaves [start, end) of the transparency log, for a full recount (`tally log audit "
            "--api`)",
            [
                _query(
                    "start",
                    {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
                    required=True,
                ),
                _query(
                    "end",
                    {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
                    "a page holds 10,000 leaves at most",
                    required=True,
                ),
            ],
            _json(
                "start, end (where this page ends: ask again from there) and leaves: index and "
                "leaf (base64)"
            ),
            {"400": "a malformed parameter"},
        ),
        "/api/log/proof": _get(
            "The inclusion proof (RFC 9162) of a TPS's latest tally of a ballot in a signed "
            "checkpoint",
            [
                _query("tps", {"type": "string", "pattern": TPS}, required=True),
                _query("ballot", {"type": "string", "enum": list(BALLOTS)}, required=True),
                _query(
                    "checkpoint",
                    {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
                    "the checkpoint's tree size (default: the latest)",
                ),
            ],
            _json(
                "leaf (base64), leaf_index, tree_size, audit_path (hex), root_hash (hex), "
                "checkpoint"
            ),
            {
                "400": "a malformed parameter",
                "404": "no such checkpoint, or no tally of that TPS and ballot in it",
            },
        ),
        "/api/log/consistency": _get(
            "The consistency proof (RFC 9162) between two checkpoints: the older log is a prefix "
            "of the newer",
            [
                _query(
                    "from",
                    {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
                    "the older checkpoint's tree size",
                    required=True,
                ),
                _query(
                    "to",
                    {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
                    "the newer checkpoint's tree size",
                    required=True,
                ),
            ],
            _json("from, to (the two checkpoints) and consistency_path (hex)"),
            {"400": "a malformed parameter", "404": "no checkpoint of that size, or from after to"},
        ),
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json("OpenAPI 3.1")}}
        },
        "/": {
            "get": {
                "summary": "The results page",
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
}
