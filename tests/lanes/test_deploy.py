"""Production settings and the HTTP layer in front of Django: `manage.py check --deploy` is clean with
nothing but DEBUG=false, a real SECRET_KEY and ALLOWED_HOSTS; the HTTPS defaults follow DEBUG and each
can be overridden; gunicorn (gunicorn.conf.py) lets long query strings through to Django, which answers
JSON, and answers what it refuses itself as README "Security" says. Each runs in a subprocess, without
pytest, so the settings take their production defaults."""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# Variables the settings, Django or gunicorn.conf.py read that a test must not inherit from the caller's
# environment (the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE, which check --deploy refuses).
OWN = re.compile(
    r"^(DEBUG|SECRET_KEY|ALLOWED_HOSTS|SECURE_.*|DATABASE_URL|CACHE_URL|MARTINGALE_AUTH_.*|MARTINGALE_TRUSTED_PROXIES"
    r"|HOST|PORT|WEB_CONCURRENCY|GUNICORN_.*|CELERY_BROKER_.*|DJANGO_SETTINGS_MODULE|DJANGO_ALLOW_ASYNC_UNSAFE)$"
)


def dotenv_keys() -> set[str]:
    dotenv = ROOT / ".env"
    if not dotenv.exists():
        return set()
    found = re.findall(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", dotenv.read_text(), re.MULTILINE)
    return {key for key in found if OWN.match(key)}


@pytest.fixture(autouse=True)
def no_dotenv_overrides():
    if dotenv_keys():
        pytest.skip(f".env sets {sorted(dotenv_keys())}, which these tests need unset")


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not OWN.match(key)}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),  # 67 random characters
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


# --- check --deploy and the settings' defaults ---------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, {"SECURE_HTTPS": "true"}], ids=["defaults", "SECURE_HTTPS=true"])
def test_check_deploy_is_clean_with_production_settings(tmp_path, overrides):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(tmp_path, ALLOWED_HOSTS="example.com", **overrides),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNING" not in done.stderr


SETTINGS_NAMES = (
    "SECURE_HTTPS", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "CACHES", "MARTINGALE_AUTH_FAILURES", "MARTINGALE_AUTH_WINDOW_SECONDS", "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "DATABASES",
)
READ_SETTINGS = """
import json, os, runpy, sys
names, answers = sys.argv[1].split(","), []
for overrides in json.loads(sys.argv[2]):
    saved = dict(os.environ)
    os.environ.update(overrides)
    try:
        values = runpy.run_path("martingale_project/settings.py")
        answers.append({name: values.get(name) for name in names})
    except Exception as exc:
        answers.append({"error": type(exc).__name__, "message": str(exc)})
    finally:
        os.environ.clear()
        os.environ.update(saved)
print(json.dumps(answers, default=list))
"""


def read_settings(tmp_path, *variants: dict) -> list[dict]:
    """The settings module's values, read in a plain Python process (no pytest), once per variant."""
    done = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS, ",".join(SETTINGS_NAMES), json.dumps(variants)],
        cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(done.stdout)


def test_production_is_https_only_by_default_and_every_default_can_be_overridden(tmp_path):
    production, plain_http, chosen, debug = read_settings(
        tmp_path,
        {},
        {"SECURE_HTTPS": "false"},
        {"SECURE_HSTS_SECONDS": "3600", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false", "SECURE_HSTS_PRELOAD": "false",
         "SECURE_COOKIES": "false"},
        {"DEBUG": "true"},
    )
    assert production == {
        **production,
        "SECURE_HTTPS": True, "SECURE_SSL_REDIRECT": True, "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "MARTINGALE_AUTH_FAILURES": 10, "MARTINGALE_AUTH_WINDOW_SECONDS": 60,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 256 * 1024,
    }
    assert production["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert plain_http["SECURE_HTTPS"] is False and plain_http["SECURE_SSL_REDIRECT"] is None
    assert plain_http["SESSION_COOKIE_SECURE"] is False and plain_http["SECURE_HSTS_SECONDS"] is None
    assert (chosen["SECURE_SSL_REDIRECT"], chosen["SECURE_HSTS_SECONDS"], chosen["SECURE_HSTS_INCLUDE_SUBDOMAINS"],
            chosen["SECURE_HSTS_PRELOAD"], chosen["SESSION_COOKIE_SECURE"]) == (True, 3600, False, False, False)
    assert debug["SECURE_HTTPS"] is False and debug["SECURE_SSL_REDIRECT"] is None


def test_cache_url_selects_redis_and_bad_values_are_refused(tmp_path):
    redis, not_redis, bad_window = read_settings(
        tmp_path,
        {"CACHE_URL": "redis://127.0.0.1:6379/1"},
        {"CACHE_URL": "memcached://127.0.0.1:11211"},
        {"MARTINGALE_AUTH_WINDOW_SECONDS": "0"},
    )
    assert redis["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis["CACHES"]["default"]["LOCATION"] == "redis://127.0.0.1:6379/1"
    assert not_redis["error"] == bad_window["error"] == "ImproperlyConfigured"
    assert "CACHE_URL" in not_redis["message"] and "MARTINGALE_AUTH_WINDOW_SECONDS" in bad_window["message"]


def test_database_connections_persist_with_health_checks_unless_told_otherwise(tmp_path):
    default, per_request, on_the_url = read_settings(
        tmp_path,
        {},
        {"DB_CONN_MAX_AGE": "0"},
        {"DATABASE_URL": "mysql://u:p@127.0.0.1:3306/db?conn_max_age=30", "DB_CONN_MAX_AGE": "0"},
    )
    assert (default["DATABASES"]["default"]["CONN_MAX_AGE"], default["DATABASES"]["default"]["CONN_HEALTH_CHECKS"]) == (600, True)
    assert per_request["DATABASES"]["default"]["CONN_MAX_AGE"] == 0
    assert on_the_url["DATABASES"]["default"]["CONN_MAX_AGE"] == 30
    assert on_the_url["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is True


# --- gunicorn in front of Django -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def get(port: int, target: str, *extra_headers: str, https: bool = True) -> tuple[int, dict[str, str], bytes]:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *extra_headers]
    if https:
        lines.append("X-Forwarded-Proto: https")  # as the TLS-terminating proxy says
    return exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with gunicorn.conf.py and production settings on a throwaway SQLite database:
    (port, a bot token). Stopped by its PID."""
    env = production_env(tmp_path, HOST="127.0.0.1", PORT=str(free_port()), WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    setup = (
        "from django.core.management import call_command; call_command('migrate', verbosity=0); "
        "from lanes import services; print(services.token_create(name='deploy-test')[1])"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    log = open(tmp_path / "gunicorn.log", "wb")
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "martingale_project.wsgi", "-c", "gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    port = int(env["PORT"])
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield port, token
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def test_gunicorn_lets_long_query_strings_reach_django_and_refuses_the_rest_itself(gunicorn):
    port, token = gunicorn
    long_query = "/api/v1/status?pad=" + "x" * 6000

    status, headers, body = get(port, long_query)
    assert (status, headers["content-type"]) == (401, "application/json")
    assert json.loads(body)["error"]["code"] == "unauthorized"

    status, headers, body = get(port, long_query, f"Authorization: Bearer {token}")
    assert (status, headers["content-type"]) == (400, "application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "invalid" and "pad" in error["fields"]
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"

    # Production settings: plain HTTP (no X-Forwarded-Proto from the proxy) is sent to HTTPS.
    status, headers, _ = get(port, "/api/v1/status", https=False)
    assert status == 301 and headers["location"] == "https://127.0.0.1/api/v1/status"

    # What gunicorn answers before Django sees the request: its own small HTML page.
    status, headers, _ = get(port, "/api/v1/status?pad=" + "x" * 8200)
    assert (status, headers["content-type"]) == (414, "text/html")
    status, headers, _ = get(port, "/api/v1/status", "X-Pad: " + "x" * 8200)
    assert (status, headers["content-type"]) == (431, "text/html")
    status, headers, _ = get(port, "/api/v1/status", *(f"X-Pad-{n}: 1" for n in range(101)))
    assert (status, headers["content-type"]) == (431, "text/html")
    status, headers, _ = exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, headers["content-type"]) == (400, "text/html")


def test_the_bad_token_throttle_is_on_in_production(gunicorn):
    port, token = gunicorn
    for _ in range(10):
        assert get(port, "/api/v1/status", "Authorization: Bearer ml_wrong")[0] == 401
    status, headers, body = get(port, "/api/v1/status", f"Authorization: Bearer {token}")
    assert (status, headers["content-type"]) == (429, "application/json")
    assert json.loads(body)["error"]["code"] == "throttled"
    assert 1 <= int(headers["retry-after"]) <= 60
    assert get(port, "/api/v1/health")[0] in (200, 503)  # health needs no token and is not throttled
