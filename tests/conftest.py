"""Suite-wide set-up: a SECRET_KEY, database-specific markers, and the shared fixtures."""
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent

# pytest-django loads the settings before this file is imported, so an environment variable set
# here comes too late for settings.py; set the key on the settings object instead (only if it
# is empty: `make test` exports SECRET_KEY). Subprocesses started by tests get it from os.environ.
os.environ.setdefault("SECRET_KEY", "test-secret-key")
try:
    settings.SECRET_KEY
except ImproperlyConfigured:
    settings.SECRET_KEY = os.environ["SECRET_KEY"]

# Production defaults that the test client and live server cannot use: they speak plain HTTP, and every
# test client is 127.0.0.1 (the bad-token throttle's cache would carry one test's failures into the
# next). tests/lanes/test_deploy.py checks the real defaults in separate processes; test_security.py
# turns the throttle on where it tests it.
settings.SECURE_SSL_REDIRECT = False
settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
settings.SECURE_HSTS_SECONDS = 0
settings.MARTINGALE_AUTH_FAILURES = 0


def _on_mysql() -> bool:
    return "mysql" in settings.DATABASES["default"]["ENGINE"]


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) tests meant for another database: `mysql` ones unless on MariaDB/MySQL,
    `sqlite_only` ones when on it. Each suite then reports only what it really ran."""
    wrong_marker = "sqlite_only" if _on_mysql() else "mysql"
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker(wrong_marker) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def on_mysql() -> bool:
    """True when the suite runs on MariaDB/MySQL (DATABASE_URL=mysql://…)."""
    return _on_mysql()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The throwaway Redis that `make test` starts (REDIS_URL)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis, or export REDIS_URL")
    return url


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (screenshots, traces, reports); git-ignored."""
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
