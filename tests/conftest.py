"""Suite-wide set-up: the environment the settings need, and markers chosen by the database."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("SECRET_KEY", "test-secret-key")

ROOT = Path(__file__).resolve().parent.parent


def _on_mysql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith("mysql")


def pytest_collection_modifyitems(config, items):
    """Tests marked `mysql` run in the MariaDB suite only (they are deselected, not skipped)."""
    if _on_mysql():
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("mysql") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis")
    return url


@pytest.fixture
def artifacts_dir():
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
