#!/usr/bin/env bash
# What `make test` runs: installs what the tests need, starts a throwaway MariaDB and Redis, checks the
# project, runs the whole suite on SQLite (with the browser tests) and on MariaDB, and stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-deps.sh
make --no-print-directory venv
py=.venv/bin/python

tmp=$(mktemp -d)
cleanup() {
  bash scripts/dbservers.sh stop "$tmp" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # exit through the EXIT trap
bash scripts/dbservers.sh start "$tmp"
# shellcheck disable=SC1091
source "$tmp/env.sh"  # MYSQL_DATABASE_URL, REDIS_URL
export MYSQL_DATABASE_URL REDIS_URL
export SECRET_KEY=test-secret-key DEBUG=false
export CELERY_BROKER_URL=filesystem:// CELERY_BROKER_FOLDER="$tmp/broker"
mkdir -p "$tmp/broker" "$tmp/broker-processed"
sqlite_url="sqlite:///$tmp/test.sqlite3"

echo "== Django checks =="
DATABASE_URL=$sqlite_url $py manage.py makemigrations --check --dry-run
DATABASE_URL=$sqlite_url $py manage.py check

# Run both suites even if the first fails; any non-zero pytest exit (5 = nothing collected) fails.
echo "== SQLite suite =="
sqlite_rc=0
DATABASE_URL=$sqlite_url $py -m pytest -p no:cacheprovider -n 2 || sqlite_rc=$?
echo "== MariaDB suite =="
mysql_rc=0
DATABASE_URL=$MYSQL_DATABASE_URL $py -m pytest -p no:cacheprovider -m "not browser" || mysql_rc=$?

echo "== SQLite suite exit $sqlite_rc, MariaDB suite exit $mysql_rc =="
[ "$sqlite_rc" -eq 0 ] && [ "$mysql_rc" -eq 0 ]
