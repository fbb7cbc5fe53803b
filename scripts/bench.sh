#!/usr/bin/env bash
# `make bench`: the bot API against its SQL floor (bench/api_cycles.py with bench/floor.py) on a throwaway
# durable MariaDB (a flush to disk per commit, as in production), started under a temporary folder and
# stopped and removed at the end, also on failure or Ctrl-C. Prints one table (BENCHMARKS.md, issue 9).
#
# Arguments go to bench/api_cycles.py, also through BENCH_ARGS:
#   make bench BENCH_ARGS="--rounds 3"        bash scripts/bench.sh --json --seconds 5
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d "${TMPDIR:-/tmp}/martingale-bench.XXXXXX")
cleanup() {
  bash scripts/dbservers.sh stop "$dir/db" >&2 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench.sh: starting a durable MariaDB under $dir" >&2
DURABLE=1 bash scripts/dbservers.sh start "$dir/db" >&2
# shellcheck disable=SC1091
. "$dir/db/env.sh"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of words
.venv/bin/python bench/api_cycles.py --database-url "$MYSQL_DATABASE_URL" --log-dir "$dir/logs" ${BENCH_ARGS:-} "$@"
