#!/usr/bin/env bash
# Starts (or stops) a throwaway MariaDB and Redis under DIR; `start` writes DIR/env.sh with their URLs.
set -euo pipefail
cmd=${1:?usage: dbservers.sh start|stop DIR}
dir=${2:?usage: dbservers.sh start|stop DIR}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

stop_pid() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
start)
  mkdir -p "$dir"
  myport=$(free_port); redisport=$(free_port)
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  mariadb-install-db --no-defaults --datadir="$dir/mysql" --user=root \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/mariadb-install.log" 2>&1
  mariadbd --no-defaults --datadir="$dir/mysql" --socket="$dir/mysql.sock" --port="$myport" \
    --bind-address=127.0.0.1 --user=root --skip-log-bin --pid-file="$dir/mariadb.pid" \
    --innodb-buffer-pool-size=256M --max-connections=300 >"$dir/mariadb.log" 2>&1 &
  echo $! >"$dir/mariadb.pid"
  for _ in $(seq 1 300); do
    mariadb-admin --no-defaults --socket="$dir/mysql.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  mariadb-admin --no-defaults --socket="$dir/mysql.sock" -uroot ping >/dev/null
  mariadb --no-defaults --socket="$dir/mysql.sock" -uroot <<SQL
CREATE DATABASE martingale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'martingale'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER 'martingale'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON martingale.* TO 'martingale'@'127.0.0.1', 'martingale'@'localhost';
GRANT ALL ON \`test\\_martingale%\`.* TO 'martingale'@'127.0.0.1', 'martingale'@'localhost';
SQL
  redis-server --bind 127.0.0.1 --port "$redisport" --daemonize yes --pidfile "$dir/redis.pid" \
    --save "" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 1 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
  cat >"$dir/env.sh" <<ENV
export MYSQL_DATABASE_URL=mysql://martingale:$password@127.0.0.1:$myport/martingale
export REDIS_URL=redis://127.0.0.1:$redisport/0
ENV
  echo "MariaDB on 127.0.0.1:$myport, Redis on 127.0.0.1:$redisport (under $dir)"
  ;;
stop)
  stop_pid "$dir/redis.pid"
  stop_pid "$dir/mariadb.pid"
  ;;
*)
  echo "usage: dbservers.sh start|stop DIR" >&2; exit 2 ;;
esac
