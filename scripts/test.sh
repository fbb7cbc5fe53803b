#!/usr/bin/env bash
# What `make test` runs: installs what the tests need, starts throwaway MariaDB and Redis, runs the
# whole suite on SQLite (with the browser tests) and on MariaDB, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-deps.sh
make --no-print-directory venv

tmp=$(mktemp -d)
cleanup() { bash scripts/dbservers.sh stop "$tmp" || true; rm -rf "$tmp"; }
trap cleanup EXIT
bash scripts/dbservers.sh start "$tmp"
# shellcheck disable=SC1091
source "$tmp/env.sh"
export SECRET_KEY=test-secret-key DEBUG=false REDIS_URL MYSQL_DATABASE_URL
export CELERY_BROKER_FOLDER="$tmp/broker"
py=.venv/bin/python

DATABASE_URL="sqlite:///$tmp/check.sqlite3" $py manage.py check
DATABASE_URL="sqlite:///$tmp/check.sqlite3" $py manage.py makemigrations --check --dry-run

status=0
echo "== SQLite suite =="
DATABASE_URL="sqlite:///$tmp/test.sqlite3" $py -m pytest -p no:cacheprovider -n 2 || status=1
echo "== MariaDB suite =="
DATABASE_URL="$MYSQL_DATABASE_URL" $py -m pytest -p no:cacheprovider -m "not browser" || status=1
exit $status
