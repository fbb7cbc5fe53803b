#!/usr/bin/env bash
# Installs the Debian packages the tests need (MariaDB, with Galera and mariabackup for the cluster
# soak; Redis, Chromium, tzdata, what building mysqlclient needs), or with `build` only the latter;
# skips those already installed.
set -euo pipefail
# tzdata: MariaDB's time zone tables are loaded from /usr/share/zoneinfo (scripts/dbservers.sh).
# gcc, libc6-dev, python3-dev: pip compiles mysqlclient (no Linux wheels); python3-venv: `python3 -m venv`.
# `apt-deps.sh build` installs only what building the venv needs (what `make run` uses).
build=(libmariadb-dev pkg-config gcc libc6-dev python3-dev python3-venv)
if [ "${1:-}" = "build" ]; then
  packages=("${build[@]}")
else
  packages=(mariadb-server mariadb-backup galera-4 redis-server chromium tzdata "${build[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  # `dpkg -s` also succeeds for removed packages whose config files remain, so check the status line
  # (captured, not piped: grep -q would close the pipe early and pipefail would count that as a failure).
  status=$(dpkg -s "$p" 2>/dev/null || true)
  [[ "$status" == *"Status: install ok installed"* ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "apt-deps.sh: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "apt-deps.sh: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
