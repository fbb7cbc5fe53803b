"""The OpenAPI 3.1 document of the bot API, served at /api/v1/openapi.json.

Built once at import. Patterns and ranges come from the validation modules, so the document
states the rules the API enforces. ``tests/lanes/test_api_openapi.py`` checks that it lists
exactly the routes of ``lanes.urls`` with the methods each view allows.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from .models import Direction, LaneEventKind, LaneOutcome, LaneStatus, TradeKind, TradeStatus
from .ranges import (
    ACCOUNT as ACCOUNT_FIELDS, LANE_LIST_LIMIT, MAX_WAIT_SECONDS, MONEY_MAX, SETTINGS as SETTINGS_FIELDS, STATS_DAYS,
    Amount, Choice, Flag, Whole,
)
from .validation import ID_RE, SYMBOL_RE

NAME_RE = TRADE_ID_RE = ID_RE

# Every code lanes.decorators and lanes.api answer with (bad_request: Django's handler400 under /api/).
ERROR_CODES = [
    "invalid", "invalid_json", "bad_request", "unsupported_media_type", "too_large", "unauthorized", "forbidden",
    "not_found", "method_not_allowed", "busy", "account_disabled", "conflict", "throttled", "database_busy",
    "database_unavailable", "engine_error", "internal_error",
]


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    result = {**schema, "type": [*types, "null"]}
    if "enum" in schema:
        result["enum"] = [*schema["enum"], None]
    return result


def obj(properties: dict, required=None, *, closed: bool = True, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required is not None:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def text(pattern, description: str = "") -> dict:
    schema = {"type": "string", "pattern": f"^{pattern.pattern}$", "maxLength": 100}
    if description:
        schema["description"] = description
    return schema


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with offset"}
MONEY = {"$ref": "#/components/schemas/Money"}
RATE = {"type": "number", "minimum": 0, "maximum": 1}


def _digit(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _digits(least: int, most: int) -> str:
    """From ``least`` to ``most`` digits, as a regex."""
    if most == 0:
        return ""
    return f"[0-9]{{{least},{most}}}" if least < most else "[0-9]" + (f"{{{most}}}" if most > 1 else "")


def _integers_below(n: str) -> list[str]:
    """Regexes for the whole numbers below ``n`` (digits without leading zeros, "" for 0), written
    without leading zeros ("" for 0)."""
    if not n:
        return []
    found = [""] + ["[1-9]" + _digits(k - 1, k - 1) for k in range(1, len(n))]
    for i, digit in enumerate(n):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            found.append(n[:i] + _digit(low, int(digit) - 1) + _digits(len(n) - i - 1, len(n) - i - 1))
    return found


def _integers_above(n: str, digits: int) -> list[str]:
    """Regexes for the whole numbers above ``n`` with at most ``digits`` digits, as in
    ``_integers_below``."""
    found = ["[1-9]" + _digits(len(n), digits - 1)] if len(n) < digits else []
    for i, digit in enumerate(n):
        if int(digit) < 9:
            found.append(n[:i] + _digit(int(digit) + 1, 9) + _digits(len(n) - i - 1, len(n) - i - 1))
    return found


def _fractions(bound: str, below: bool) -> list[str]:
    """Regexes for the fraction parts (``.ddd`` or none) that, padded with zeros to ``bound``'s
    length, are below (or above) ``bound``."""
    places = len(bound)
    found = []
    if below and bound.strip("0"):
        found.append("")  # no fraction: .000 < bound
    for i, digit in enumerate(bound):
        rest = _digits(0, places - i - 1)
        if below and int(digit) > 0:
            found.append(rf"\.{bound[:i]}{_digit(0, int(digit) - 1)}{rest}")
        elif not below and int(digit) < 9:
            found.append(rf"\.{bound[:i]}{_digit(int(digit) + 1, 9)}{rest}")
    if below:  # cut short where the bound goes on with a digit above the zeros it is padded with
        found += [rf"\.{bound[:m]}" for m in range(1, places) if bound[m:].strip("0")]
    return found


def decimal_pattern(low: Decimal, high: Decimal, places: int) -> str:
    """The decimal strings from ``low`` to ``high`` with at most ``places`` places, as a regex.

    JSON Schema's minimum and maximum bind numbers only, so for an amount sent as a string the
    range is stated by negative lookaheads that refuse the strings below ``low`` and above ``high``.
    Digits as lanes.ranges.PLAIN_DECIMAL takes them: no sign, no leading zeros.
    """
    digits = len(str(int(high)))

    def outside(bound: Decimal, below: bool) -> str:
        whole, _, fraction = f"{bound:.{places}f}".partition(".")
        whole = whole.lstrip("0")
        integers = _integers_below(whole) if below else _integers_above(whole, digits)
        options = [rf"{n or '0'}(\.[0-9]+)?$" for n in integers]
        options += [f"{whole or '0'}{f}$" for f in _fractions(fraction, below)]
        return f"(?!{'|'.join(options)})" if options else ""

    whole = "(0|[1-9]" + (f"[0-9]{{0,{digits - 1}}}" if digits > 1 else "") + ")"
    return rf"^{outside(low, True)}{outside(high, False)}{whole}(\.[0-9]{{1,{places}}})?$"


def money_input(low: str, description: str, field: Amount | None = None) -> dict:
    places = field.places if field else 2
    high = field.high if field else MONEY_MAX
    return {
        "type": ["string", "number"],
        "pattern": decimal_pattern(Decimal(low), high, places),
        "minimum": float(low),
        "maximum": float(high),
        "multipleOf": float(Decimal(1).scaleb(-places)),
        "description": description + f" From {low} to {high}, at most {places} decimal places; "
        "send a string (\"1.85\") to keep it exact. NaN and Infinity are refused.",
    }


def schema_of(field, default: bool = True) -> dict:
    """The JSON schema of a field of lanes.ranges."""
    if isinstance(field, Flag):
        schema = dict(BOOLEAN)
    elif isinstance(field, Whole):
        schema = {**INTEGER, "minimum": field.low, "maximum": field.high}
    elif isinstance(field, Choice):
        schema = {"type": "string", "enum": list(field.choices)}
    else:
        schema = money_input(str(field.low), field.help, field)
    if field.help and "description" not in schema:
        schema["description"] = field.help
    if default and field.default is not None and not isinstance(field, Amount):
        schema["default"] = field.default
    return schema


SETTINGS_PROPERTIES = {name: schema_of(field) for name, field in SETTINGS_FIELDS.items()}
ACCOUNT_PROPERTIES = {name: schema_of(field, default=False) for name, field in ACCOUNT_FIELDS.items()}
WARNING = obj(
    {"code": STRING, "message": STRING, "active_lanes": INTEGER},
    required=["code", "message"],
    closed=False,
)

TRADE = obj(
    {
        "trade_id": STRING,
        "account": STRING,
        "symbol": STRING,
        "direction": nullable({"type": "string", "enum": list(Direction.values)}),
        "status": {"type": "string", "enum": list(TradeStatus.values)},
        "kind": {"type": ["string", "null"], "enum": [*TradeKind.values, None], "description": "null while queued"},
        "lane_id": {"type": ["string", "null"], "description": "null while queued or for a base/legacy trade"},
        "level": {"type": ["integer", "null"], "minimum": 0, "description": "null while queued"},
        "amount": nullable(MONEY),
        "expected_payout": nullable(MONEY),
        "payout": nullable(MONEY),
        "profit": nullable(MONEY),
        "requested_at": TIME,
        "opened_at": nullable(TIME),
        "settled_at": nullable(TIME),
        "expires_at": nullable(TIME),
        "max_wait_seconds": schema_of(MAX_WAIT_SECONDS, default=False),
        "queue_position": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "place in the account's queue while queued (1 = next to open), else null",
        },
    },
    required=[
        "trade_id", "account", "symbol", "direction", "status", "kind", "lane_id", "level", "amount",
        "expected_payout", "payout", "profit", "requested_at", "opened_at", "settled_at", "expires_at",
        "queue_position",
    ],
    closed=False,
)

LANE = obj(
    {
        "id": INTEGER,
        "lane_id": STRING,
        "account_name": STRING,
        "symbol": STRING,
        "status": {"type": "string", "enum": list(LaneStatus.values)},
        "current_level": {**INTEGER, "minimum": 0},
        "base_amount": MONEY,
        "current_amount": MONEY,
        "multiplier": MONEY,
        "max_level": INTEGER,
        "total_invested": MONEY,
        "total_potential_payout": MONEY,
        "trade_ids": {"type": "array", "items": STRING},
        "created_at": TIME,
        "updated_at": TIME,
        "completed_at": nullable(TIME),
        "outcome": {"type": ["string", "null"], "enum": [*LaneOutcome.values, None]},
        "open_trade_id": {"type": ["string", "null"]},
    },
    required=[
        "id", "lane_id", "account_name", "symbol", "status", "current_level", "base_amount",
        "current_amount", "multiplier", "max_level", "total_invested", "total_potential_payout",
        "trade_ids", "created_at", "updated_at", "completed_at", "outcome", "open_trade_id",
    ],
    closed=False,
)

ACCOUNT = obj(
    {
        "id": INTEGER,
        "worker_name": STRING,
        "is_demo": BOOLEAN,
        "enabled": BOOLEAN,
        "balance": MONEY,
        "base_amount": MONEY,
        "martingale_multiplier": MONEY,
        "martingale_enabled": BOOLEAN,
        "martingale_max_level": schema_of(ACCOUNT_FIELDS["martingale_max_level"], default=False),
        "payout_rate": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{4}$"},
        "enhanced_martingale_enabled": BOOLEAN,
        "legacy_consecutive_losses": INTEGER,
        "created_at": TIME,
        "last_updated": TIME,
    },
    closed=False,
)

TRADE_COUNTS = {
    "trades": INTEGER,
    "wins": INTEGER,
    "losses": INTEGER,
    "draws": INTEGER,
    "net_profit": MONEY,
}

STATS = obj(
    {
        "account": {"type": ["string", "null"]},
        "days": schema_of(STATS_DAYS, default=False),
        "since": TIME,
        "until": TIME,
        "lanes_created": INTEGER,
        "lanes_active": INTEGER,
        "lanes_recovered": INTEGER,
        "lanes_exhausted": INTEGER,
        "lanes_cancelled": INTEGER,
        "lanes_force_completed": INTEGER,
        "recovery_rate": {**RATE, "description": "recovered / (recovered + exhausted), 0 when both are 0"},
        "avg_level": NUMBER,
        "max_level": INTEGER,
        "total_invested": MONEY,
        "total_potential_payout": MONEY,
        **TRADE_COUNTS,
        "trades_open": INTEGER,
        "trades_cancelled": INTEGER,
        "win_rate": {**RATE, "description": "wins / (wins + losses), 0 when both are 0"},
        "by_level": {
            "type": "array",
            "items": obj(
                {"level": {"type": ["integer", "null"]}, **TRADE_COUNTS, "lanes_recovered": INTEGER, "lanes_exhausted": INTEGER},
                closed=False,
            ),
        },
        "by_symbol": {
            "type": "array",
            "items": obj(
                {
                    "symbol": STRING,
                    **TRADE_COUNTS,
                    "win_rate": RATE,
                    "lanes_created": INTEGER,
                    "lanes_recovered": INTEGER,
                    "lanes_exhausted": INTEGER,
                },
                closed=False,
            ),
        },
        "daily": {
            "type": "array",
            "items": obj(
                {
                    "date": {"type": "string", "format": "date"},
                    **TRADE_COUNTS,
                    "lanes_created": INTEGER,
                    "lanes_recovered": INTEGER,
                    "lanes_exhausted": INTEGER,
                },
                closed=False,
            ),
        },
    },
    required=[
        "lanes_created", "lanes_active", "lanes_recovered", "lanes_exhausted", "lanes_cancelled",
        "recovery_rate", "avg_level", "max_level", "total_invested", "total_potential_payout", "trades",
        "wins", "losses", "draws", "win_rate", "net_profit", "by_level", "by_symbol", "daily",
    ],
    closed=False,
)

CHECK = obj(
    {
        "status": {"type": "string", "enum": ["ok", "error", "unreachable"]},
        "latency_ms": NUMBER,
        "error": {"type": "string", "description": "the class of the error, when the check failed"},
    },
    required=["status"],
    closed=False,
)

SCHEMAS: dict[str, Any] = {
    "Money": {
        "type": "string",
        "pattern": r"^-?[0-9]+\.[0-9]{2}$",
        "description": "A decimal amount as a string with two places",
        "examples": ["1.50"],
    },
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {"type": "string", "enum": ERROR_CODES},
                    "message": STRING,
                    "fields": {
                        "type": "object",
                        "additionalProperties": STRING,
                        "description": "each field at fault and what is wrong with it",
                    },
                    "retry_after": {
                        **INTEGER,
                        "minimum": 1,
                        "description": "seconds; with codes busy, throttled, database_busy and database_unavailable "
                        "(also the Retry-After header)",
                    },
                },
                required=["code", "message"],
            )
        },
        required=["error"],
    ),
    "TradeRequest": obj(
        {
            "account": text(NAME_RE, "the account's worker_name"),
            "symbol": {**text(SYMBOL_RE), "maxLength": 50},
            "trade_id": text(TRADE_ID_RE, "the client's id; generated when absent. Send one so retries are idempotent."),
            "direction": nullable({"type": "string", "enum": list(Direction.values)}),
            "expected_payout": nullable(money_input("0.01", "What a win would return, stake included.")),
            "max_wait_seconds": {
                **schema_of(MAX_WAIT_SECONDS),
                "description": "how long the request may wait in the queue; 0 = refuse with 409 busy instead",
            },
        },
        required=["account", "symbol"],
    ),
    "ResultRequest": obj(
        {
            "result": {"type": "string", "enum": ["win", "loss", "draw"]},
            "payout": nullable(
                money_input(
                    "0.00",
                    "What the broker returned: a win's must be more than the stake (default: the expected payout), "
                    "a loss's at least 0 and less than the stake (default 0), a draw's the stake (its default).",
                )
            ),
        },
        required=["result"],
    ),
    "CancelRequest": obj({}, description="An empty body or {}"),
    "CompleteRequest": obj({"status": {"type": "string", "enum": ["completed", "cancelled"], "default": "completed"}}),
    "SettingsPatch": obj(SETTINGS_PROPERTIES, minProperties=1),
    "Settings": obj({"account": STRING, **SETTINGS_PROPERTIES}, required=["account", *SETTINGS_PROPERTIES]),
    "AccountPatch": obj(
        {
            **ACCOUNT_PROPERTIES,
            "complete_active_lanes": {
                **BOOLEAN,
                "default": False,
                "description": "also complete (force_completed) every active lane of the account in the same change",
            },
        },
        minProperties=1,
    ),
    "AccountChange": obj(
        {
            **ACCOUNT["properties"],
            "warnings": {
                "type": "array",
                "items": WARNING,
                "description": "e.g. lanes_take_no_trades: active lanes stay idle while martingale is off or in legacy mode",
            },
            "completed_lanes": {"type": "array", "items": STRING, "description": "the lanes complete_active_lanes completed"},
        },
        required=["worker_name", "warnings", "completed_lanes"],
        closed=False,
    ),
    "Trade": TRADE,
    "TradeWithLane": {
        "allOf": [ref("Trade"), {"type": "object", "properties": {"lane": nullable(ref("Lane"))}, "required": ["lane"]}]
    },
    "Lane": LANE,
    "LaneEvent": obj(
        {
            "id": INTEGER,
            "kind": {"type": "string", "enum": list(LaneEventKind.values)},
            "trade_id": {"type": ["string", "null"]},
            "actor": STRING,
            "data": {"type": "object"},
            "created_at": TIME,
        },
        required=["id", "kind", "trade_id", "actor", "data", "created_at"],
        closed=False,
    ),
    "LaneDetail": {
        "allOf": [
            ref("Lane"),
            {
                "type": "object",
                "properties": {
                    "events": {"type": "array", "items": ref("LaneEvent")},
                    "trades": {"type": "array", "items": ref("Trade")},
                },
                "required": ["events", "trades"],
            },
        ]
    },
    "LaneList": obj(
        {
            "lanes": {"type": "array", "items": ref("Lane")},
            "next": {"type": ["string", "null"], "description": "the cursor of the next page; null on the last"},
        },
        required=["lanes", "next"],
    ),
    "Account": ACCOUNT,
    "AccountStatus": obj(
        {
            "account": ref("Account"),
            "settings": ref("Settings"),
            "mode": {"type": "string", "enum": ["enhanced", "legacy"]},
            "slots": {**INTEGER, "minimum": 1},
            "free_slots": {**INTEGER, "minimum": 0},
            "active_lanes": {"type": "array", "items": ref("Lane")},
            "open_trades": {"type": "array", "items": ref("Trade")},
            "queued_trades": {"type": "array", "items": ref("Trade")},
            "lanes_created_today": INTEGER,
            "net_profit_today": MONEY,
            "lane_worst_case": MONEY,
            "worst_case_exposure": MONEY,
            "warnings": {"type": "array", "items": obj({"kind": STRING, "message": STRING}, required=["kind", "message"])},
        },
        required=["account", "settings", "slots", "active_lanes", "open_trades", "queued_trades"],
        closed=False,
    ),
    "Status": obj(
        {"generated_at": TIME, "accounts": {"type": "array", "items": ref("AccountStatus")}},
        required=["accounts"],
        closed=False,
    ),
    "Stats": STATS,
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["ok", "error"]},
            "database": CHECK,
            "broker": CHECK,
            "stuck_lanes": obj(
                {"count": {"type": ["integer", "null"]}, "after_hours": {"type": "number"}},
                description="Active lanes unchanged for MARTINGALE_STUCK_LANE_HOURS (count null without a database)",
            ),
            "overdue_trades": obj(
                {"count": {"type": ["integer", "null"]}, "after_seconds": {"type": "integer"}},
                description="Trades open longer than MARTINGALE_TRADE_TIMEOUT_SECONDS (count null without a database)",
            ),
        },
        required=["status", "database", "broker", "stuck_lanes", "overdue_trades"],
        closed=False,
    ),
}


# --- Operations ---------------------------------------------------------------------------------


def error(description: str, **headers) -> dict:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
    if headers:
        response["headers"] = headers
    return response


def answer(description: str, schema: str, **headers) -> dict:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def body(schema: str, *, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": ref(schema)}}}


LOCATION = {"schema": STRING, "description": "the trade's URL"}


def path_param(name: str, pattern, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description + " (a malformed value is a 400 naming the parameter)",
        "schema": text(pattern),
    }


TRADE_ID = path_param("trade_id", TRADE_ID_RE, "The trade's id")
LANE_ID = path_param("lane_id", TRADE_ID_RE, "The lane's lane_id")
ACCOUNT_NAME = path_param("account", NAME_RE, "The account's worker_name")
DAYS = {
    "name": "days",
    "in": "query",
    "required": False,
    "description": "the window in days of 24 hours",
    "schema": schema_of(STATS_DAYS),
}


def retry_after(when: str, *, required: bool = True) -> dict:
    return {
        "required": required,
        "description": f"whole seconds to wait before retrying ({when})",
        "schema": {"type": "integer", "minimum": 1},
    }


E400 = error("Invalid input: `fields` names each parameter or body field at fault")
E401 = error(
    "Missing, malformed, unknown or revoked token (unauthorized)",
    **{"WWW-Authenticate": {"required": True, "schema": STRING, "description": 'Bearer realm="api"'}},
)
E403 = error("The account is outside the token's scope")
E404 = error("No such account, trade or lane")
E409 = error("Refused by the contract's rules (conflict, busy, account_disabled)")
E429 = error(
    "throttled: this client sent too many missing or bad tokens lately; every request from it is refused, "
    "whatever its token, until its window ends (retry_after and the Retry-After header)",
    **{"Retry-After": retry_after("the end of the window")},
)
DATABASE_FAULTS = (
    "database_busy (the database aborted the transaction again and again) or database_unavailable (it cannot "
    "be reached): nothing was written; retry after retry_after seconds (also the Retry-After header)"
)
E503 = error(DATABASE_FAULTS, **{"Retry-After": retry_after("as the error's retry_after")})
E503_CHANGE = error(
    DATABASE_FAULTS + "; or engine_error: the lane logic failed on this change, nothing was written, retry later",
    **{"Retry-After": retry_after("every code, engine_error included")},
)
BODY_ERRORS = {
    "413": error("The body is larger than 64 KiB (too_large)"),
    "415": error("The body is not sent as application/json in UTF-8 (unsupported_media_type)"),
}


def operation(op_id: str, summary: str, responses: dict, *, auth: bool = True, body_errors: bool = False, **extra) -> dict:
    """An operation; one with a token also answers 401, 429 and (its token is read from the
    database) 503, one with a body 413 and 415."""
    answers = dict(responses)
    if auth:
        answers.setdefault("401", E401)
        answers.setdefault("429", E429)
        answers.setdefault("503", E503)
    if body_errors:
        answers.update(BODY_ERRORS)
    spec = {"operationId": op_id, "summary": summary, "responses": answers, **extra}
    spec["security"] = [{"bearerAuth": []}] if auth else []
    return spec


PATHS = {
    "/api/v1/trades": {
        "post": operation(
            "requestTrade",
            "Ask for a stake: open a trade now, queue it, or refuse it",
            {
                "201": answer("A new trade, open or queued", "Trade", Location=LOCATION),
                "200": answer("The same trade_id was already requested with the same fields", "Trade", Location=LOCATION),
                "400": E400,
                "403": E403,
                "404": error("No such account"),
                "409": error(
                    "busy (no slot now and max_wait_seconds is 0; see retry_after and the Retry-After header), "
                    "account_disabled, or conflict (the trade_id exists with other fields)",
                    **{"Retry-After": retry_after("busy only", required=False)},
                ),
            },
            body_errors=True,
            requestBody=body("TradeRequest"),
        )
    },
    "/api/v1/trades/{trade_id}": {
        "parameters": [TRADE_ID],
        "get": operation(
            "getTrade",
            "Read one trade (serves the account's queue first)",
            {"200": answer("The trade", "Trade"), "400": E400, "403": E403, "404": E404},
        ),
    },
    "/api/v1/trades/{trade_id}/result": {
        "parameters": [TRADE_ID],
        "post": operation(
            "reportResult",
            "Report win, loss or draw; repeating the same result is harmless",
            {
                "200": answer("The settled trade, with the lane it moved (or null)", "TradeWithLane"),
                "400": E400,
                "403": E403,
                "404": E404,
                "409": error("The trade is settled with another result, or is queued, expired or cancelled"),
                "503": E503_CHANGE,
            },
            body_errors=True,
            requestBody=body("ResultRequest"),
        ),
    },
    "/api/v1/trades/{trade_id}/cancel": {
        "parameters": [TRADE_ID],
        "post": operation(
            "cancelTrade",
            "Cancel a queued or open trade; cancelling twice is harmless",
            {
                "200": answer("The cancelled trade", "Trade"),
                "400": E400,
                "403": E403,
                "404": E404,
                "409": error("The trade is already settled or expired"),
                "503": E503_CHANGE,
            },
            body_errors=True,
            requestBody=body("CancelRequest", required=False),
        ),
    },
    "/api/v1/lanes": {
        "get": operation(
            "listLanes",
            "Lanes of the accounts in the token's scope, oldest first, a page at a time",
            {"200": answer("One page of lanes and the cursor of the next", "LaneList"), "400": E400, "403": E403},
            parameters=[
                {"name": "account", "in": "query", "required": False, "schema": text(NAME_RE)},
                {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": list(LaneStatus.values)}},
                {"name": "limit", "in": "query", "required": False, "schema": schema_of(LANE_LIST_LIMIT)},
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "description": "the `next` of the previous page (any other value is a 400)",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": 200},
                },
            ],
        )
    },
    "/api/v1/lanes/{lane_id}": {
        "parameters": [LANE_ID],
        "get": operation(
            "getLane",
            "One lane with its event timeline and its trades",
            {"200": answer("The lane", "LaneDetail"), "400": E400, "403": E403, "404": E404},
        ),
    },
    "/api/v1/lanes/{lane_id}/complete": {
        "parameters": [LANE_ID],
        "post": operation(
            "completeLane",
            "End an active lane by hand as completed (force_completed) or cancelled",
            {
                "200": answer("The finished lane", "Lane"),
                "400": E400,
                "403": E403,
                "404": E404,
                "409": error("The lane is already finished"),
                "503": E503_CHANGE,
            },
            body_errors=True,
            requestBody=body("CompleteRequest", required=False),
        ),
    },
    "/api/v1/accounts/{account}": {
        "parameters": [ACCOUNT_NAME],
        "get": operation(
            "getAccount",
            "The account's own fields: stakes, payout rate, balance and switches",
            {"200": answer("The account", "Account"), "400": E400, "403": E403, "404": E404},
        ),
        "patch": operation(
            "updateAccount",
            "Change the account's own fields; all or nothing. Switching martingale or lanes off with active "
            "lanes answers a warning, and complete_active_lanes completes them in the same change",
            {
                "200": answer("The account after the change, with warnings", "AccountChange"),
                "400": E400,
                "403": E403,
                "404": E404,
                "503": E503_CHANGE,
            },
            body_errors=True,
            requestBody=body("AccountPatch"),
        ),
    },
    "/api/v1/accounts/{account}/settings": {
        "parameters": [ACCOUNT_NAME],
        "get": operation(
            "getSettings",
            "The account's six trading settings (the defaults when it has none stored)",
            {"200": answer("The settings", "Settings"), "400": E400, "403": E403, "404": E404},
        ),
        "patch": operation(
            "updateSettings",
            "Change any of the six settings; all or nothing",
            {"200": answer("The settings after the change", "Settings"), "400": E400, "403": E403, "404": E404},
            body_errors=True,
            requestBody=body("SettingsPatch"),
        ),
    },
    "/api/v1/accounts/{account}/status": {
        "parameters": [ACCOUNT_NAME],
        "get": operation(
            "getAccountStatus",
            "The account with its settings, slots, active lanes, open and queued trades",
            {"200": answer("The status", "AccountStatus"), "400": E400, "403": E403, "404": E404},
        ),
    },
    "/api/v1/accounts/{account}/stats": {
        "parameters": [ACCOUNT_NAME],
        "get": operation(
            "getAccountStats",
            "Statistics of one account over the last `days` days",
            {"200": answer("The statistics", "Stats"), "400": E400, "403": E403, "404": E404},
            parameters=[DAYS],
        ),
    },
    "/api/v1/stats": {
        "get": operation(
            "getStats",
            "Statistics of every account in the token's scope over the last `days` days",
            {"200": answer("The statistics", "Stats"), "400": E400},
            parameters=[DAYS],
        )
    },
    "/api/v1/status": {
        "get": operation(
            "getStatus",
            "The status of every enabled account in the token's scope",
            {"200": answer("The statuses", "Status"), "400": E400},
        )
    },
    "/api/v1/health": {
        "get": operation(
            "health",
            "Database and broker health; a broker outage is reported but is not a failure",
            {"200": answer("The database answers", "Health"), "503": answer("The database does not answer", "Health")},
            auth=False,
        )
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
        }
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Martingale Lanes bot API",
        "version": "1.0.0",
        "description": (
            "Trades, lanes, settings, status and statistics for trading bots. Money is a decimal "
            "string with two places. Errors are {\"error\": {\"code\", \"message\", \"fields\"?}}. "
            "Bodies are JSON objects sent as application/json, at most 64 KiB; unknown fields are refused. "
            "A whole number is written without a fraction or an exponent (6, not 6.0). A method a path does not "
            "take answers 405 with an Allow header, an unknown path 404, both with the error shape."
        ),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token"}},
        "schemas": SCHEMAS,
    },
}
