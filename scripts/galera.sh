#!/usr/bin/env bash
# Starts (or stops) a throwaway 3-node MariaDB Galera cluster on loopback under DIR; `start` writes
# DIR/env.sh with GALERA_URL_1..3 (one URL per node, same database and user).
# State transfer uses mariabackup (rsync fails here as root). Recipe: ../shared/MACHINE.md.
set -euo pipefail
usage="usage: galera.sh start|stop DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
export PATH="$PATH:/usr/sbin:/sbin"
PROVIDER=/usr/lib/galera/libgalera_smm.so

free_ports() {  # N distinct free TCP ports on 127.0.0.1
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()' "$1"
}

ping_node() { mariadb-admin --no-defaults --socket="$dir/node$1/mysql.sock" -uroot ping >/dev/null 2>&1; }

cluster_size() {
  mariadb --no-defaults --socket="$dir/node$1/mysql.sock" -uroot -N -e "SHOW STATUS LIKE 'wsrep_cluster_size'" 2>/dev/null | awk '{print $2}'
}

start_node() {  # start_node N ADDRESS: node N joins (or bootstraps, with gcomm://) the cluster
  local n=$1 address=$2 me
  me=$(id -un)
  local port=${PORTS[$((n - 1))]} group=${GROUPS_[$((n - 1))]}
  # log-bin-trust-function-creators: a Galera node counts as binary logging, under which creating
  # the statistics triggers (lanes/summary.py) otherwise needs SUPER.
  mariadbd --no-defaults --datadir="$dir/node$n/data" --socket="$dir/node$n/mysql.sock" --port="$port" \
    --bind-address=127.0.0.1 --user="$me" --pid-file="$dir/node$n/mariadb.pid" \
    --binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
    --log-bin-trust-function-creators=1 \
    --innodb-flush-log-at-trx-commit=0 --max-connections=300 \
    --wsrep-on=ON --wsrep-provider="$PROVIDER" --wsrep-cluster-name=martingale-test \
    --wsrep-cluster-address="$address" --wsrep-node-address="127.0.0.1:$group" --wsrep-node-name="node$n" \
    --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$group;ist.recv_addr=127.0.0.1:$((group + 1))" \
    --wsrep-sst-receive-address="127.0.0.1:$((group + 2))" \
    --wsrep-sst-method=mariabackup --wsrep-sst-auth="sst:$SST_PASSWORD" \
    </dev/null >>"$dir/node$n/mariadb.log" 2>&1 &
  echo $! >"$dir/node$n/mariadb.pid"
  for _ in $(seq 1 450); do  # up to ~90 s: a joiner first copies the data by mariabackup
    if ping_node "$n" && [ "$(cluster_size "$n")" -ge "$n" ] 2>/dev/null; then return 0; fi
    kill -0 "$(cat "$dir/node$n/mariadb.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "galera.sh: node $n did not join; end of its log:" >&2
  tail -n 30 "$dir/node$n/mariadb.log" >&2
  exit 1
}

start() {
  if [ -e "$dir/node1" ]; then
    echo "galera.sh: $dir/node1 exists; stop and remove it first" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  read -r -a ports < <(free_ports 3)
  PORTS=("${ports[0]}" "${ports[1]}" "${ports[2]}")
  # Each node's group port g, with g+1 (IST) and g+2 (SST) free too: take spaced ports.
  GROUPS_=()
  for n in 0 1 2; do
    local g
    while :; do
      g=$(python3 -c 'import random; print(random.randrange(20000, 60000, 10))')
      python3 - "$g" <<'PY' && break
import socket, sys
g = int(sys.argv[1])
try:
    for p in (g, g + 1, g + 2):
        s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
except OSError:
    sys.exit(1)
PY
    done
    GROUPS_+=("$g")
  done
  SST_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  local password me
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  me=$(id -un)
  for n in 1 2 3; do
    mkdir -p "$dir/node$n"
    echo "${PORTS[$((n - 1))]} ${GROUPS_[$((n - 1))]}" >"$dir/node$n/ports"
  done
  printf '%s\n' "${GROUPS_[@]}" >"$dir/groups"
  echo "$SST_PASSWORD" >"$dir/sst_password"
  mariadb-install-db --no-defaults --datadir="$dir/node1/data" --user="$me" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/node1/install.log" 2>&1 \
    || { cat "$dir/node1/install.log" >&2; exit 1; }
  start_node 1 "gcomm://"
  mariadb --no-defaults --socket="$dir/node1/mysql.sock" -uroot <<SQL
CREATE USER 'sst'@'localhost' IDENTIFIED BY '$SST_PASSWORD';
GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, REPLICA MONITOR ON *.* TO 'sst'@'localhost';
CREATE DATABASE martingale CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'martingale'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON \`martingale\`.* TO 'martingale'@'127.0.0.1';
GRANT RELOAD ON *.* TO 'martingale'@'127.0.0.1';
SQL
  local members="gcomm://127.0.0.1:${GROUPS_[0]},127.0.0.1:${GROUPS_[1]},127.0.0.1:${GROUPS_[2]}"
  for n in 2 3; do
    mkdir -p "$dir/node$n/data"
    start_node "$n" "$members"
  done
  {
    for n in 1 2 3; do
      echo "export GALERA_URL_$n=mysql://martingale:$password@127.0.0.1:${PORTS[$((n - 1))]}/martingale"
    done
  } >"$dir/env.sh"
  echo "galera.sh: 3 nodes on 127.0.0.1:${PORTS[0]},${PORTS[1]},${PORTS[2]}, cluster size $(cluster_size 1) (under $dir)"
}

stop_node() {
  local file="$dir/node$1/mariadb.pid" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q mariadbd || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
  start) start ;;
  stop) for n in 3 2 1; do stop_node "$n"; done ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
