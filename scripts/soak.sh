#!/usr/bin/env bash
# What `make soak` runs: the soak of issue 8 at full size, printing its figures. First on one durable
# MariaDB (16 bots on 2 accounts, 2 app servers, a worker killed every 2 s for 40 s, the database
# killed for 10 s), then on a 3-node Galera cluster with an app server on each node. Every server
# it starts is stopped at the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/apt-deps.sh
make --no-print-directory venv
py=.venv/bin/python
SECONDS_=${SOAK_SECONDS:-60}

tmp=$(mktemp -d)
cleanup() {
  bash scripts/dbservers.sh stop "$tmp/db" || true
  bash scripts/galera.sh stop "$tmp/galera" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== One MariaDB: worker kills, a 10 s outage, two app servers =="
DURABLE=1 bash scripts/dbservers.sh start "$tmp/db"
# shellcheck disable=SC1091
source "$tmp/db/env.sh"
single=0
$py bench/soak.py --database-url "$MYSQL_DATABASE_URL" --bots 16 --accounts 2 --servers 2 --seconds "$SECONDS_" \
  --kill-every 2 --kill-for 40 --outage-dir "$tmp/db" --outage-at 20 --outage-seconds 10 || single=$?

echo "== A 3-node Galera cluster, an app server on each node, worker kills =="
bash scripts/galera.sh start "$tmp/galera"
# shellcheck disable=SC1091
source "$tmp/galera/env.sh"
cluster=0
$py bench/soak.py --database-url "$GALERA_URL_1" --database-url "$GALERA_URL_2" --database-url "$GALERA_URL_3" \
  --bots 16 --accounts 2 --servers 3 --seconds "$SECONDS_" --kill-every 2 --kill-for 40 || cluster=$?

echo "== soak exit $single, cluster soak exit $cluster =="
[ "$single" -eq 0 ] && [ "$cluster" -eq 0 ]
