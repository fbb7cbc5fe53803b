"""The bot API against its own OpenAPI document (issue 8).

* The served document is valid OpenAPI 3.1 (openapi-spec-validator).
* Schemathesis generates requests for every documented operation from the document itself, both
  positive (valid by the document) and negative (invalid by it), and sends them to a live server
  with one valid bearer token. Every answer must not be a 5xx and must have a status the
  operation documents, with the documented content type, body schema and headers. A negative
  request must be refused with a 4xx; a positive one may be refused with a 400 only for a rule
  the document states in words (a cursor from another list, a stake that would overflow, ...).
  About half of the positive requests name real objects (open, queued and settled trades, lanes,
  the token's account and one outside its scope), so the answers for real trades and lanes are
  checked too, while the fuzzing moves them along.
* Probes that generation does not make, each answer checked against the document with the same
  checks: undocumented methods (405), a body that is not JSON (415) or too large (413), a missing
  or bad token (401), a throttled client (429) and database faults (503 with Retry-After).

Size: FUZZ_EXAMPLES (default 40) examples per operation and mode, about 1,100 requests; the fuzz
test prints how many it made and their status codes (`pytest -s` shows it). FUZZ_SEED picks the
examples (default 8, so that a run is repeatable; FUZZ_SEED=random for a new seed, printed).
Hypothesis deadlines and its example database are off: the requests are slow and the state that
matters is the server's.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import random
import re
import time
from copy import deepcopy
from dataclasses import dataclass, field
from functools import partial

import jsonschema
import pytest
import requests
import schemathesis
from django.core.cache import cache
from django.db import OperationalError
from django.db.backends import utils as db_utils
from hypothesis import HealthCheck, Phase, given, seed, settings as hypothesis_settings, strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lanes import services
from lanes.api.schemas import decimal_pattern
from lanes.ranges import ACCOUNT, EXPECTED_PAYOUT, LADDER_FIELDS, PAYOUT, Amount

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
_seed = os.environ.get("FUZZ_SEED", "8")
SEED = random.randrange(2**32) if _seed == "random" else int(_seed)
DOCUMENT = "/api/v1/openapi.json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# What every answer is checked for.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Rules a JSON schema cannot state: a request valid by the document may still be refused with a
# 400 naming one of these fields (SPEC §9: 400 for invalid input), each described in the document.
RULES_IN_WORDS = {
    "GET /api/v1/lanes": {"cursor"},  # the `next` of an earlier page, not any base64url text
    "POST /api/v1/trades/{trade_id}/result": {"payout"},  # bounded by the trade's stake, by result
    "PATCH /api/v1/accounts/{account}": set(LADDER_FIELDS),  # a lane's last stake must fit DECIMAL(10,2)
}

FUZZ_SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis example database
    phases=[Phase.generate],  # failures are collected, not raised: nothing to shrink
    suppress_health_check=list(HealthCheck),  # slow requests and filtered examples are expected here
    print_blob=False,
)


# --- The served document -------------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_3_1(client):
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_validator_would_catch_a_broken_document(client):
    """The test above is not vacuous: a path parameter that is not required is refused."""
    document = deepcopy(client.get(DOCUMENT).json())
    document["paths"]["/api/v1/trades/{trade_id}"]["get"]["parameters"][0]["required"] = False
    with pytest.raises(OpenAPIValidationError):
        validate(document, cls=OpenAPIV31SpecValidator)


AMOUNTS = {name: spec for name, spec in ACCOUNT.items() if isinstance(spec, Amount)}
AMOUNTS.update(expected_payout=EXPECTED_PAYOUT, payout=PAYOUT)


@pytest.mark.parametrize("name", sorted(AMOUNTS))
def test_the_pattern_of_an_amount_string_is_exactly_its_range(name):
    """JSON Schema's minimum and maximum bind numbers only; for an amount sent as a string the
    document's pattern states the range. It accepts exactly the strings of digits the API takes."""
    spec = AMOUNTS[name]
    pattern = re.compile(decimal_pattern(spec.low, spec.high, spec.places))
    digits = len(str(int(spec.high)))
    near = set()
    for bound in (spec.low, spec.high):
        for step in range(-3, 4):
            value = bound + step * spec.quantum
            if value >= 0:
                text = f"{value:f}"
                near |= {text, "0" + text, text.rstrip("0").rstrip("."), text.split(".")[0]}
    shapes = st.from_regex(rf"\A[0-9]{{1,{digits}}}(\.[0-9]{{1,{spec.places}}})?\Z")

    @seed(SEED)
    @hypothesis_settings(max_examples=300, deadline=None, database=None)
    @given(text=st.one_of(shapes, st.sampled_from(sorted(near))))
    def agrees(text):
        if not re.fullmatch(rf"[0-9]{{1,{digits}}}(\.[0-9]{{1,{spec.places}}})?", text):
            return
        try:
            spec.clean(text)
            accepted = True
        except ValueError:
            accepted = False
        assert bool(pattern.match(text)) == accepted, (text, accepted, pattern.pattern)

    agrees()


# --- A live server with a little state ------------------------------------------------------------


@dataclass
class World:
    """The live server, the fuzz client's token and the objects its requests may name."""

    base_url: str
    headers: dict
    schema: schemathesis.BaseSchema
    known: dict = field(default_factory=dict)  # path parameter -> real values
    outside: dict = field(default_factory=dict)  # path parameter -> the real values outside the token's scope

    def operation(self, label: str):
        method, path = label.split(" ", 1)
        return self.schema[path][method]

    def scope_is_kept(self, ctx, response, case):
        """A check (SPEC §9): an account outside the token's scope is refused with 403, while its
        trades and lanes answer 404 as unknown ones do, so that ids cannot be probed."""
        named = {name for name, value in case.path_parameters.items() if value in self.outside.get(name, ())}
        account = case.body.get("account") if isinstance(case.body, dict) else None
        if isinstance(account, str) and account in self.outside["account"]:
            named.add("account")  # POST /trades for an account outside the scope
        if not named:
            return None
        if case.meta is not None and case.meta.generation.mode.is_negative and 400 <= response.status_code < 500:
            return None  # an invalid request may be refused before any look-up
        if response.status_code == 400:
            refused = set(response.json()["error"].get("fields") or {})
            if not refused & RULES_IN_WORDS.get(case.operation.label, set()):
                return None  # refused for what the request says, before any look-up
        # Not answered by a rule about the object: a 400 on its stake or a 409 would reveal it.
        expected = 403 if "account" in named else 404
        if response.status_code != expected:
            raise AssertionError(f"{', '.join(sorted(named))} outside the token's scope: expected {expected}")


@pytest.fixture
def quiet_request_log():
    """django.request logs every 4xx as a warning: thousands of lines here. Errors still show."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def world(live_server, quiet_request_log) -> World:
    """Accounts "acc" (the fuzz token's only account) and "other" (outside its scope), each with a
    lane from a lost base trade and a trade open in it; "acc" also has a queued trade."""
    base_url = live_server.url
    services.account_create(name="acc", values={"base_amount": "1.00"})
    services.account_create(name="other", values={"base_amount": "1.00"})
    _, setup_raw = services.token_create(name="setup")  # every account
    _, fuzz_raw = services.token_create(name="fuzz", account_names=["acc"])

    setup = requests.Session()
    setup.headers["Authorization"] = f"Bearer {setup_raw}"

    def post(path, body):
        response = setup.post(base_url + path, json=body, timeout=30)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)

    for account, prefix in (("acc", "t"), ("other", "o")):
        post("/api/v1/trades", {"account": account, "symbol": "EURUSD", "trade_id": f"{prefix}-base"})
        post(f"/api/v1/trades/{prefix}-base/result", {"result": "loss"})
        post("/api/v1/trades", {"account": account, "symbol": "EURUSD", "trade_id": f"{prefix}-open"})
    post("/api/v1/trades", {"account": "acc", "symbol": "GBPUSD", "trade_id": "t-queued"})
    lanes = {lane["account_name"]: lane["lane_id"] for lane in setup.get(base_url + "/api/v1/lanes", timeout=30).json()["lanes"]}
    assert set(lanes) == {"acc", "other"}
    setup.close()
    # A released lock of each account (SPEC §11): releasing it again answers it as it is.
    locks = {}
    for account in ("acc", "other"):
        locks[account] = services.account_lock(account_name=account, minutes=5, actor="setup").lock_id
        services.lock_release(lock_id=locks[account], actor="setup")

    return World(
        base_url=base_url,
        headers={"Authorization": f"Bearer {fuzz_raw}"},
        schema=schemathesis.openapi.from_url(base_url + DOCUMENT),
        known={
            "trade_id": ["t-base", "t-open", "t-queued", "o-base", "o-open"],
            "lane_id": [lanes["acc"], lanes["other"]],
            "account": ["acc", "other"],
            "lock_id": [locks["acc"], locks["other"]],
        },
        outside={
            "trade_id": {"o-base", "o-open"}, "lane_id": {lanes["other"]}, "account": {"other"}, "lock_id": {locks["other"]},
        },
    )


def _documented(document) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


def _check(case, response, checks=CHECKS):
    """Raise AssertionError (schemathesis's report, with a curl command) unless the answer conforms."""
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        raise AssertionError(group.message) from None


# --- Fuzzing ---------------------------------------------------------------------------------------


def _has_input(operation) -> bool:
    """Whether there is anything to make invalid: GET /status has no parameters and no body, and
    the Authorization header is fixed to the valid token."""
    return bool(operation.path_parameters or operation.query or operation.body)


def _override_body(case, **fields):
    """The case with some body fields replaced (with valid values: the case stays positive)."""
    if isinstance(case.body, dict):
        case.body = {**case.body, **fields}
    return case


def _strategy(operation, mode: GenerationMode, world: World):
    """Cases for one operation: generated ones and, for positive data, as many again that name the
    world's real objects (so the answers for real trades and lanes are checked, not only 404s)."""
    generated = operation.as_strategy(generation_mode=mode, headers=world.headers)
    if mode.is_negative:
        return generated
    real = [
        operation.as_strategy(generation_mode=mode, headers=world.headers, path_parameters={parameter.name: value})
        for parameter in operation.path_parameters
        for value in world.known.get(parameter.name, ())
    ]
    if operation.label == "POST /api/v1/trades":
        # Requests for the token's account, some reusing an existing trade_id (200 or 409), and
        # for the account outside its scope (403).
        real.append(generated.map(partial(_override_body, account="acc")))
        real.append(generated.map(partial(_override_body, account="acc", trade_id="t-open")))
        real.append(generated.map(partial(_override_body, account="other")))
    if operation.label == "GET /api/v1/lanes":
        real.append(operation.as_strategy(generation_mode=mode, headers=world.headers, query={"account": "acc"}))
    return st.one_of(generated, st.one_of(real)) if real else generated


@dataclass
class Tally:
    """The requests of a fuzz run, their status codes and the failures found (once per kind)."""

    requests: int = 0
    by_mode: collections.Counter = field(default_factory=collections.Counter)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    failures: dict = field(default_factory=dict)  # (operation, mode, failure title) -> report

    def send(self, case, world: World, mode: GenerationMode):
        response = case.call(base_url=world.base_url, timeout=30)
        self.requests += 1
        self.by_mode[mode.value] += 1
        self.statuses[response.status_code] += 1
        checks = [*CHECKS, world.scope_is_kept]
        checks.append(negative_data_rejection if mode.is_negative else self.positive_data_acceptance)
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.failures.setdefault((case.operation.label, mode.value, failure.title), group.message)

    def positive_data_acceptance(self, ctx, response, case):
        """A request valid by the document is refused with a 400 only for a rule in words."""
        if response.status_code != 400 or case.meta is None or not case.meta.generation.mode.is_positive:
            return None
        refused = set(response.json()["error"].get("fields") or {})
        allowed = RULES_IN_WORDS.get(case.operation.label, set())
        if refused and refused <= allowed:
            return None
        raise AssertionError(f"A request valid by the document was refused: {response.text}")

    def summary(self, elapsed: float) -> str:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        modes = ", ".join(f"{mode} {count}" for mode, count in sorted(self.by_mode.items()))
        lines = [
            f"fuzz: {self.requests} requests ({modes}) in {elapsed:.1f} s; FUZZ_EXAMPLES={EXAMPLES} FUZZ_SEED={SEED}",
            f"fuzz: status codes: {codes}",
        ]
        return "\n".join(lines)

    def report(self) -> str:
        return f"FUZZ_SEED={SEED}\n\n" + "\n\n".join(
            f"== {operation} [{mode}] {title}\n{message}" for (operation, mode, title), message in self.failures.items()
        )


@pytest.mark.django_db(transaction=True)
def test_fuzz_every_operation_against_the_document(world):
    tally = Tally()
    started = time.monotonic()
    operations = [result.ok() for result in world.schema.get_all_operations()]
    # Every documented operation but the document itself, which schemathesis leaves out.
    assert {operation.label for operation in operations} == _documented(world.schema.raw_schema) - {f"GET {DOCUMENT}"}
    for index, operation in enumerate(operations):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode.is_negative and not _has_input(operation):
                continue

            @seed(SEED * 100 + 2 * index + mode.is_negative)
            @FUZZ_SETTINGS
            @given(case=_strategy(operation, mode, world))
            def fuzz(case):
                tally.send(case, world, mode)

            fuzz()
    print(tally.summary(time.monotonic() - started))
    assert not tally.failures, tally.report()
    assert tally.requests >= 25 * EXAMPLES  # 1,000 and more by default


# --- Probes ----------------------------------------------------------------------------------------

VALID_BODIES = {
    "POST /api/v1/trades": {"account": "acc", "symbol": "EURUSD"},
    "POST /api/v1/trades/{trade_id}/result": {"result": "win"},
    "POST /api/v1/trades/{trade_id}/cancel": {},
    "POST /api/v1/lanes/{lane_id}/complete": {"status": "completed"},
    "PATCH /api/v1/accounts/{account}": {"is_demo": True},
    "PATCH /api/v1/accounts/{account}/settings": {"max_daily_lanes": 10},
    "POST /api/v1/accounts/{account}/locks": {"minutes": 1},
    "POST /api/v1/locks/{lock_id}/release": {},
}


def _case(world: World, label: str, **extra):
    """A request for the operation, naming the world's first real objects, with the fuzz token."""
    operation = world.operation(label)
    path_parameters = {parameter.name: world.known[parameter.name][0] for parameter in operation.path_parameters}
    if label in VALID_BODIES:
        extra.setdefault("body", VALID_BODIES[label])
        extra.setdefault("media_type", "application/json")
    return operation.Case(path_parameters=path_parameters, headers=dict(world.headers), **extra)


def _url(world: World, case) -> str:
    return world.base_url + case.formatted_path


@pytest.fixture
def clean_throttle():
    """Bad-token counts live in the default cache, per client address: the probes' must not
    count against other tests from the same address."""
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_answers_generation_does_not_ask_for_are_documented(world, clean_throttle):
    document = world.schema.raw_schema
    # The Error schema, with the document's components beside it so that its references resolve.
    error_schema = {**document["components"]["schemas"]["Error"], "components": document["components"]}
    probes = 0

    # A method a path does not take: 405 naming the ones it does, in the error shape.
    for path, item in document["paths"].items():
        allowed = {method.upper() for method in item if method.upper() in METHODS}
        url = world.base_url + re.sub(r"\{(\w+)\}", lambda m: world.known[m.group(1)][0], path)
        for method in sorted(set(METHODS) - allowed):
            response = requests.request(method, url, headers=world.headers, timeout=30)
            probes += 1
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.headers["Allow"].split(", ")) == allowed, (method, path)
            assert response.headers["Content-Type"] == "application/json"
            jsonschema.validate(response.json(), error_schema)

    # Bodies the API does not read: too large (413), not sent as JSON (415).
    for label in VALID_BODIES:
        case = _case(world, label)
        method = label.split(" ")[0]
        too_large = json.dumps({"symbol": "x" * (65 * 1024)})
        for data, content_type, status in (
            (too_large, "application/json", 413),
            (json.dumps(VALID_BODIES[label] or {}), "text/plain", 415),
            (json.dumps(VALID_BODIES[label] or {}), "application/json; charset=latin-1", 415),
        ):
            headers = {**world.headers, "Content-Type": content_type}
            response = requests.request(method, _url(world, case), data=data, headers=headers, timeout=30)
            probes += 1
            assert response.status_code == status, (label, content_type, response.status_code, response.text)
            _check(case, response)

    # No token, or not a bearer token: 401 (a few only: bad tokens are counted per client).
    for headers in ({}, {"Authorization": "Basic YWNjOnNlY3JldA=="}):
        case = _case(world, "GET /api/v1/status")
        response = requests.get(_url(world, case), headers=headers, timeout=30)
        probes += 1
        assert response.status_code == 401
        _check(case, response)
    print(f"probes: {probes} requests")


@pytest.mark.django_db(transaction=True)
def test_a_throttled_client_gets_the_documented_429(world, settings, clean_throttle):
    if not hasattr(settings, "MARTINGALE_AUTH_FAILURES"):
        pytest.skip("no bad-token throttle in this version")
    settings.MARTINGALE_AUTH_FAILURES = 2
    settings.MARTINGALE_AUTH_MAX_DELAY_SECONDS = 0
    for _ in range(2):
        bad = {"Authorization": "Bearer ml_bad"}
        assert requests.get(world.base_url + "/api/v1/status", headers=bad, timeout=30).status_code == 401
    for label in ("GET /api/v1/status", "POST /api/v1/trades"):
        case = _case(world, label)
        response = case.call(base_url=world.base_url, timeout=30)  # the good token is refused too
        assert response.status_code == 429, (label, response.text)
        assert response.json()["error"]["code"] == "throttled"
        _check(case, response)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "message, code", [("database is locked", "database_busy"), ("unable to open database file", "database_unavailable")]
)
def test_database_faults_get_the_documented_503_on_every_operation(world, monkeypatch, message, code):
    """Every query fails as the database would (SQLite's messages, which lanes.faults names on any
    backend): each operation that reads the database, its token at least, answers the documented
    503 with Retry-After; health answers its documented 503; the document itself needs no database."""

    def failing(self, sql, params=None):
        raise OperationalError(message)

    labels = sorted(_documented(world.schema.raw_schema) - {f"GET {DOCUMENT}"})
    cases = {label: _case(world, label) for label in labels}
    answers = {}
    with monkeypatch.context() as patch:
        patch.setattr(db_utils.CursorWrapper, "execute", failing)
        patch.setattr(db_utils.CursorWrapper, "executemany", failing)
        for label, case in cases.items():
            answers[label] = case.call(base_url=world.base_url, timeout=30)
        document = requests.get(world.base_url + DOCUMENT, timeout=30)
    assert document.status_code == 200
    for label, response in answers.items():
        assert response.status_code == 503, (label, response.status_code, response.text[:300])
        _check(cases[label], response, [check for check in CHECKS if check is not not_a_server_error])
        if label != "GET /api/v1/health":
            assert response.json()["error"]["code"] == code, label
            assert int(response.headers["retry-after"][0]) >= 1  # schemathesis: lowercased names, lists
