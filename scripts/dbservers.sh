#!/usr/bin/env bash
# Starts (or stops) a throwaway MariaDB and Redis under DIR on free ports; `start` writes DIR/env.sh with their URLs.
set -euo pipefail
usage="usage: dbservers.sh start|stop|kill-mariadb|start-mariadb DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
export PATH="$PATH:/usr/sbin:/sbin"  # mariadbd lives in /usr/sbin, which non-root PATHs often lack

# Two distinct free TCP ports on 127.0.0.1, space-separated.
free_ports() {
  python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()'
}

# stop_pid PIDFILE NAME: TERM the process if it is still NAME, wait up to 15 s, then KILL.
stop_pid() {
  local file=$1 name=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  # A stale pid file may name a recycled PID: only signal the process we started.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 75); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "dbservers.sh: $name ($pid) ignored TERM, killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# start_mariadb: run mariadbd on DIR/mysql at the port saved in DIR/mariadb.port; wait until it answers.
start_mariadb() {
  local me mypid ok=""
  me=$(id -un)
  # Durability is pointless for a throwaway server: skip the fsyncs to keep the suite fast, unless
  # DURABLE=1 (the soak kills the server and then counts what its commits kept).
  local flush=(--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0)
  [ -e "$dir/durable" ] && flush=(--innodb-flush-log-at-trx-commit=1)
  mariadbd --no-defaults --datadir="$dir/mysql" --socket="$dir/mysql.sock" --port="$(cat "$dir/mariadb.port")" \
    --bind-address=127.0.0.1 --user="$me" --skip-log-bin --pid-file="$dir/mariadb.pid" \
    "${flush[@]}" --max-connections=300 \
    </dev/null >>"$dir/mariadb.log" 2>&1 &
  mypid=$!
  echo "$mypid" >"$dir/mariadb.pid"
  for _ in $(seq 1 300); do  # up to ~60 s
    if mariadb-admin --no-defaults --socket="$dir/mysql.sock" -uroot ping >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$mypid" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "dbservers.sh: MariaDB did not start; end of $dir/mariadb.log:" >&2
    tail -n 20 "$dir/mariadb.log" >&2
    exit 1
  fi
}

start() {
  if [ -e "$dir/mysql" ]; then
    echo "dbservers.sh: $dir/mysql exists; stop and remove it first" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local myport redisport password me
  me=$(id -un)  # root on CI; as another user, --user=root would fail
  read -r myport redisport < <(free_ports)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

  # MariaDB: a fresh data directory, root over the socket without a password.
  mariadb-install-db --no-defaults --datadir="$dir/mysql" --user="$me" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/mariadb-install.log" 2>&1 \
    || { cat "$dir/mariadb-install.log" >&2; exit 1; }
  echo "$myport" >"$dir/mariadb.port"
  if [ "${DURABLE:-0}" = 1 ]; then touch "$dir/durable"; fi  # kept for start-mariadb after a kill
  start_mariadb
  # Django's time-zone-aware date functions (CONVERT_TZ) need MariaDB's time zone tables.
  mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | mariadb --no-defaults --socket="$dir/mysql.sock" -uroot mysql
  # `_` is a wildcard in grant patterns, hence test\_martingale%: covers test_martingale and
  # pytest-xdist's test_martingale_gw0, … but not e.g. testXmartingale.
  mariadb --no-defaults --socket="$dir/mysql.sock" -uroot <<SQL
CREATE DATABASE martingale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'martingale'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER 'martingale'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON \`martingale\`.* TO 'martingale'@'127.0.0.1', 'martingale'@'localhost';
GRANT RELOAD ON *.* TO 'martingale'@'127.0.0.1', 'martingale'@'localhost';
GRANT ALL ON \`test\\_martingale%\`.* TO 'martingale'@'127.0.0.1', 'martingale'@'localhost';
SQL

  # Redis: no persistence, daemonized; it writes its own pid file.
  redis-server --bind 127.0.0.1 --port "$redisport" --daemonize yes --pidfile "$dir/redis.pid" \
    --save "" --appendonly no --logfile "$dir/redis.log" --dir "$dir"
  ok=""
  for _ in $(seq 1 100); do  # up to ~20 s
    if [ -s "$dir/redis.pid" ] && redis_ping "$redisport"; then ok=1; break; fi
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "dbservers.sh: Redis did not start; end of $dir/redis.log:" >&2
    tail -n 20 "$dir/redis.log" >&2
    exit 1
  fi

  cat >"$dir/env.sh" <<ENV
export MYSQL_DATABASE_URL=mysql://martingale:$password@127.0.0.1:$myport/martingale
export REDIS_URL=redis://127.0.0.1:$redisport/0
ENV
  echo "dbservers.sh: MariaDB on 127.0.0.1:$myport, Redis on 127.0.0.1:$redisport (under $dir)"
}

# redis_ping PORT: true once Redis answers PONG (plain socket, so redis-cli is not required).
redis_ping() {
  python3 -c '
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)' "$1"
}

case "$cmd" in
  start) start ;;
  kill-mariadb)  # an outage: the server dies at once (the tests' fault injection)
    pid=$(cat "$dir/mariadb.pid")
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q mariadbd && kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
  start-mariadb) dir=$(cd "$dir" && pwd); start_mariadb ;;
  stop)
    stop_pid "$dir/redis.pid" redis-server
    stop_pid "$dir/mariadb.pid" mariadbd
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
