"""Security of the HTTP layer: the bad-token throttle of the bot API (SPEC §9), login throttling
with django-axes, and body size limits. README "Security" describes the rules tested here."""
import os
import shutil
import socket
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.exception import response_for_exception
from django.core.management import call_command
from django.db.models import F
from django.test import Client, RequestFactory

from lanes import services, throttle
from lanes.models import Trade

pytestmark = pytest.mark.django_db

FAILURES, WINDOW = 10, 60
ATTACKER, NEIGHBOUR = "203.0.113.7", "198.51.100.20"


@pytest.fixture
def delays(settings, monkeypatch):
    """The throttle as in production (it is off by default in test runs), on a clean cache; the
    list of the delays it asked for, recorded instead of slept."""
    settings.MARTINGALE_AUTH_FAILURES = FAILURES
    settings.MARTINGALE_AUTH_WINDOW_SECONDS = WINDOW
    settings.MARTINGALE_AUTH_MAX_DELAY_SECONDS = 0.25
    settings.MARTINGALE_TRUSTED_PROXIES = []
    asked: list[float] = []
    monkeypatch.setattr(throttle, "sleep", asked.append)
    cache.clear()
    yield asked
    cache.clear()


@pytest.fixture
def raw_token():
    services.account_create(name="acc", values={})
    return services.token_create(name="bot")[1]


def api(client, path="/api/v1/status", token=None, address=ATTACKER, method="GET", body=None, **extra):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.generic(
        method, path, body or "", content_type="application/json", headers=headers, REMOTE_ADDR=address, **extra
    )


def assert_throttled(response):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["message"]
    assert 1 <= error["retry_after"] <= WINDOW
    assert response["Retry-After"] == str(error["retry_after"])


# --- The bad-token throttle ---------------------------------------------------------------------


def test_bad_tokens_are_slowed_down_then_every_request_is_refused_with_429(client, delays, raw_token):
    answers = [api(client, token="ml_wrong") for _ in range(FAILURES)]
    assert [r.status_code for r in answers] == [401] * FAILURES
    assert all(r.json()["error"]["code"] == "unauthorized" for r in answers)
    # No delay before the N/2-th bad token, then growing delays, never more than the cap.
    assert len(delays) == FAILURES - FAILURES // 2 + 1
    assert delays == sorted(delays) and 0 < delays[0] and max(delays) <= 0.25

    before = Trade.objects.count()
    refused = api(client, "/api/v1/trades", raw_token, method="POST", body='{"account": "acc", "symbol": "EURUSD"}')
    assert_throttled(refused)  # even with a good token
    assert_throttled(api(client, token="ml_wrong"))
    assert_throttled(api(client))
    assert Trade.objects.count() == before
    assert len(delays) == FAILURES - FAILURES // 2 + 1  # a 429 answers at once


def test_a_missing_authorization_header_counts_like_a_bad_token(client, delays, raw_token):
    for n in range(FAILURES):
        assert api(client, token=None if n % 2 else "ml_wrong").status_code == 401
    assert_throttled(api(client, token=raw_token))


def test_a_good_token_does_not_reset_the_count(client, delays, raw_token):
    for _ in range(FAILURES - 1):
        assert api(client, token="ml_wrong").status_code == 401
    assert api(client, token=raw_token).status_code == 200
    assert api(client, token="ml_wrong").status_code == 401
    assert_throttled(api(client, token=raw_token))


def test_below_the_limit_a_client_is_served_normally(client, delays, raw_token):
    for _ in range(FAILURES // 2 - 1):
        assert api(client, token="ml_wrong").status_code == 401
    assert delays == []
    assert api(client, token=raw_token).status_code == 200


def test_other_clients_are_not_affected(client, delays, raw_token):
    for _ in range(FAILURES):
        api(client, token="ml_wrong")
    assert_throttled(api(client, token=raw_token))
    assert api(client, token=raw_token, address=NEIGHBOUR).status_code == 200
    asked = len(delays)
    assert api(client, token="ml_wrong", address=NEIGHBOUR).status_code == 401
    assert len(delays) == asked  # the neighbour's first bad token is not slowed down either


def test_the_refusal_lasts_until_the_window_ends_and_is_not_extended(client, delays, raw_token, settings):
    settings.MARTINGALE_AUTH_FAILURES = 2
    settings.MARTINGALE_AUTH_WINDOW_SECONDS = 1
    started = time.monotonic()
    api(client, token="ml_wrong")
    api(client, token="ml_wrong")
    refused = api(client, token=raw_token)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    for _ in range(5):  # requests while refused are not counted
        assert api(client, token="ml_wrong").status_code == 429
    time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))
    assert api(client, token=raw_token).status_code == 200
    assert api(client, token="ml_wrong").status_code == 401  # a new window


def test_the_delay_really_waits(client, settings, raw_token):
    settings.MARTINGALE_AUTH_FAILURES = 2
    settings.MARTINGALE_AUTH_WINDOW_SECONDS = WINDOW
    settings.MARTINGALE_AUTH_MAX_DELAY_SECONDS = 0.25
    cache.clear()
    try:
        started = time.monotonic()
        assert api(client, token="ml_wrong").status_code == 401  # the N/2-th: delayed by the full step
        assert 0.24 <= time.monotonic() - started < 2
    finally:
        cache.clear()


def test_health_and_the_openapi_document_are_not_throttled(client, delays):
    for _ in range(FAILURES):
        api(client, token="ml_wrong")
    assert_throttled(api(client))
    assert client.get("/api/v1/health", REMOTE_ADDR=ATTACKER).status_code == 200
    assert client.get("/api/v1/openapi.json", REMOTE_ADDR=ATTACKER).status_code == 200


def test_zero_failures_turns_the_throttle_off(client, delays, raw_token, settings):
    settings.MARTINGALE_AUTH_FAILURES = 0
    for _ in range(3 * FAILURES):
        assert api(client, token="ml_wrong").status_code == 401
    assert delays == []
    assert api(client, token=raw_token).status_code == 200


def test_the_counts_expire_with_the_window(delays):
    guard = throttle.AuthThrottle.from_settings()
    guard.record_failure("192.0.2.1")
    count_key, since_key = guard._keys("192.0.2.1")
    for key in (count_key, since_key):
        expiry = cache._expire_info[cache.make_and_validate_key(key)]  # LocMemCache's own bookkeeping
        assert 0 < expiry - time.time() <= WINDOW


def test_an_unreachable_cache_lets_the_api_answer(client, raw_token, settings):
    settings.MARTINGALE_AUTH_FAILURES = FAILURES
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    assert api(client, token="ml_wrong").status_code == 401
    assert api(client, token=raw_token).status_code == 200


# --- Which client: REMOTE_ADDR, or the address a trusted proxy forwarded --------------------------


def request_from(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_the_client_is_remote_addr_unless_it_is_a_trusted_proxy(settings):
    settings.MARTINGALE_TRUSTED_PROXIES = []
    assert throttle.client_address(request_from("10.0.0.5", "1.2.3.4")) == "10.0.0.5"  # header ignored
    settings.MARTINGALE_TRUSTED_PROXIES = ["10.0.0.0/24", "::1"]
    assert throttle.client_address(request_from("10.0.0.5", "1.2.3.4")) == "1.2.3.4"
    assert throttle.client_address(request_from("::1", "1.2.3.4, 10.0.0.7")) == "1.2.3.4"  # two proxies
    # What the client wrote itself, left of what the proxy appended, is ignored.
    assert throttle.client_address(request_from("10.0.0.5", "9.9.9.9, 1.2.3.4")) == "1.2.3.4"
    assert throttle.client_address(request_from("10.0.0.5", "junk, 1.2.3.4")) == "1.2.3.4"
    assert throttle.client_address(request_from("10.0.0.5")) == "10.0.0.5"  # the proxy sent no header
    assert throttle.client_address(request_from("192.0.2.9", "1.2.3.4")) == "192.0.2.9"  # not a proxy
    assert throttle.client_address(request_from("")) is None


def test_an_ipv6_client_counts_as_its_64_block():
    assert throttle.client_key("2001:db8:1:2:aaaa::1") == throttle.client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle.client_key("2001:db8:1:3::1") != throttle.client_key("2001:db8:1:2::1")
    assert throttle.client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle.client_key("192.0.2.1") == "192.0.2.1"
    assert throttle.client_key(None) == throttle.client_key("not an address") == "unknown"


def test_behind_a_trusted_proxy_each_forwarded_client_counts_alone(client, delays, raw_token, settings):
    settings.MARTINGALE_TRUSTED_PROXIES = ["127.0.0.1"]
    for _ in range(FAILURES):
        api(client, token="ml_wrong", address="127.0.0.1", HTTP_X_FORWARDED_FOR=ATTACKER)
    assert_throttled(api(client, token=raw_token, address="127.0.0.1", HTTP_X_FORWARDED_FOR=ATTACKER))
    # Prepending another address does not help the attacker; other bots behind the proxy are served.
    spoofed = api(client, token=raw_token, address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{NEIGHBOUR}, {ATTACKER}")
    assert spoofed.status_code == 429
    assert api(client, token=raw_token, address="127.0.0.1", HTTP_X_FORWARDED_FOR=NEIGHBOUR).status_code == 200


# --- Several processes share the counts through Redis (CACHE_URL) ---------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_location(tmp_path_factory):
    """REDIS_URL when set (make test), else a redis-server of our own, stopped by its PID."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if not shutil.which("redis-server"):
        pytest.skip("needs REDIS_URL or redis-server")
    folder = tmp_path_factory.mktemp("redis")
    port, pidfile = free_port(), folder / "redis.pid"
    subprocess.run(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "yes", "--pidfile", str(pidfile),
         "--save", "", "--dir", str(folder)],
        check=True, capture_output=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text().strip()), 15)


def test_with_redis_every_process_shares_one_count_that_expires(redis_location):
    from django.core.cache.backends.redis import RedisCache

    prefix = f"test-throttle-{uuid.uuid4().hex}"

    def process_cache():  # what each app server's process builds from CACHE_URL
        return RedisCache(redis_location, {"KEY_PREFIX": prefix, "OPTIONS": {"socket_connect_timeout": 1}})

    one, two = (throttle.AuthThrottle(4, WINDOW, 0.25, cache=process_cache()) for _ in range(2))
    try:
        for guard in (one, two, one, two):
            guard.record_failure("192.0.2.44")
        refused = one.refusal("192.0.2.44")
        assert refused is not None and 1 <= refused.retry_after <= WINDOW
        assert two.refusal("192.0.2.44") is not None
        assert one.refusal("192.0.2.45") is None
        client = one.cache._cache.get_client(write=False)
        for key in one._keys("192.0.2.44"):
            assert 0 < client.ttl(one.cache.make_and_validate_key(key)) <= WINDOW
    finally:
        one.reset("192.0.2.44")


# --- Login throttling (django-axes) -------------------------------------------------------------

PASSWORD = "right-password-123"


@pytest.fixture
def users(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; axes does not care
    model = get_user_model()
    return (
        model.objects.create_user("alice", password=PASSWORD),
        model.objects.create_user("bob", password=PASSWORD),
        model.objects.create_user("root", password=PASSWORD, is_staff=True, is_superuser=True),
    )


def login(client, username, password, address="192.0.2.10", url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(client, users):
    answers = [login(client, "alice", f"wrong-{n}").status_code for n in range(30)]
    assert answers[:4] == [200] * 4  # the form again, with its error
    assert set(answers[4:]) == {429}  # locked from the 5th failure on
    right = login(client, "alice", PASSWORD)
    assert right.status_code == 429
    assert not logged_in(client)
    page = right.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page and "Martingale Lanes" in page
    assert client.get("/").status_code == 302  # still sent to the login page


def test_other_users_and_other_addresses_can_still_log_in(users):
    attacker = Client()
    for n in range(6):
        login(attacker, "alice", f"wrong-{n}")
    assert login(attacker, "alice", PASSWORD).status_code == 429

    other_user = Client()
    assert login(other_user, "bob", PASSWORD).status_code == 302  # same address, another user
    assert logged_in(other_user)
    other_address = Client()
    assert login(other_address, "alice", PASSWORD, address="192.0.2.99").status_code == 302
    assert logged_in(other_address)


def test_after_the_cool_off_the_right_password_logs_in(client, users):
    for n in range(5):
        login(client, "alice", f"wrong-{n}")
    assert login(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in(client)


def test_an_administrator_can_lift_a_lockout(client, users):
    for n in range(5):
        login(client, "alice", f"wrong-{n}")
    call_command("axes_reset_username", "alice")
    assert login(client, "alice", PASSWORD).status_code == 302


def test_a_successful_login_resets_the_count(client, users):
    for n in range(4):
        login(client, "alice", f"wrong-{n}")
    assert login(client, "alice", PASSWORD).status_code == 302
    client.post("/accounts/logout/", REMOTE_ADDR="192.0.2.10")
    for n in range(4):
        assert login(client, "alice", f"wrong-{n}").status_code == 200
    assert login(client, "alice", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, users):
    for n in range(5):
        login(client, "root", f"wrong-{n}", url="/admin/login/")
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 429
    assert not logged_in(client)
    assert client.get("/admin/").status_code == 302


def test_force_login_still_works(client, users):
    client.force_login(users[0])
    assert client.get("/").status_code == 200


# --- Body size limits ---------------------------------------------------------------------------

ONE_MIB = 1024 * 1024


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain"])
def test_a_one_mib_api_body_answers_json_and_writes_nothing(client, raw_token, content_type):
    body = '{"account": "acc", "symbol": "EURUSD", "pad": "' + "x" * ONE_MIB + '"}'
    if content_type == "application/x-www-form-urlencoded":
        body = "account=acc&symbol=EURUSD&pad=" + "x" * ONE_MIB
    for headers in ({"Authorization": f"Bearer {raw_token}"}, {}):
        response = client.post("/api/v1/trades", body, content_type=content_type, headers=headers)
        assert response.status_code in (400, 401, 413)
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] in ("too_large", "bad_request", "unauthorized")
    assert client.post("/api/v1/trades", body, content_type=content_type,
                       headers={"Authorization": f"Bearer {raw_token}"}).status_code == 413
    assert Trade.objects.count() == 0


def test_a_body_django_itself_refuses_answers_json_under_the_api(client):
    """A POST to no endpoint is not read (JSON 404); a body Django refuses while reading it
    (RequestDataTooBig, a 400 through handler400) answers JSON under /api/ and HTML elsewhere."""
    response = client.post(
        "/api/v1/no-such-endpoint", "pad=" + "x" * ONE_MIB, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    for path, content_type in (("/api/v1/trades", "application/json"), ("/accounts/login/", "text/html")):
        request = RequestFactory().post(path, "pad=" + "x" * ONE_MIB, content_type="application/x-www-form-urlencoded")
        with pytest.raises(RequestDataTooBig) as refused:
            _ = request.POST
        response = response_for_exception(request, refused.value)
        assert response.status_code == 400
        assert response["Content-Type"].startswith(content_type)


def test_dashboard_forms_are_bounded(client, users, settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 256 * 1024
    big = client.post("/accounts/login/", {"username": "alice", "password": "x" * (300 * 1024)})
    assert big.status_code == 400
    many = {f"f{n}": "1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    assert client.post("/accounts/login/", {"username": "alice", "password": "x", **many}).status_code == 400
    assert login(client, "alice", PASSWORD).status_code == 302
