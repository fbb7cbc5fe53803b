#!/usr/bin/env bash
# What `make run` runs: migrates, makes a demo account, a login and a bot token (once), then starts
# the web server, a Celery worker and Celery beat, and stops all three on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG=${DEBUG:-true}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p .run
py=.venv/bin/python

$py manage.py migrate --noinput -v0
if ! $py manage.py martingale account add demo --base-amount 1.00 --multiplier 1.5 --balance 1000 >/dev/null 2>.run/account.err; then
  grep -q "already exists" .run/account.err || { cat .run/account.err >&2; exit 1; }
fi

if [ ! -s .run/login.txt ]; then
  password=$($py -c 'import secrets; print(secrets.token_urlsafe(12))')
  if $py manage.py shell -c 'from django.contrib.auth.models import User; import sys; sys.exit(0 if User.objects.filter(username="admin").exists() else 1)'; then
    DJANGO_SUPERUSER_PASSWORD=$password $py manage.py shell -c \
      'import os; from django.contrib.auth.models import User; u = User.objects.get(username="admin"); u.set_password(os.environ["DJANGO_SUPERUSER_PASSWORD"]); u.save()'
  else
    DJANGO_SUPERUSER_PASSWORD=$password $py manage.py createsuperuser --noinput --username admin --email admin@example.com
  fi
  echo "$password" >.run/login.txt
fi
if [ ! -s .run/token.txt ]; then
  $py manage.py martingale token create "demo-bot-$(date +%s)" --account demo | tail -n 1 >.run/token.txt
fi

pids=()
stop() { trap - INT TERM EXIT; for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop INT TERM EXIT

if [ "$DEBUG" = "true" ]; then
  $py manage.py runserver "$HOST:$PORT" --noreload >.run/web.log 2>&1 &
else
  $py -m gunicorn martingale_project.wsgi -b "$HOST:$PORT" --workers 2 \
    --access-logfile .run/web.log --error-logfile .run/web.log &
fi
pids+=($!)
.venv/bin/celery -A martingale_project worker -l info --concurrency 2 --logfile .run/worker.log >/dev/null 2>&1 &
pids+=($!)
.venv/bin/celery -A martingale_project beat -l info --schedule .run/celerybeat-schedule --logfile .run/beat.log >/dev/null 2>&1 &
pids+=($!)

cat <<INFO

Martingale Lanes is running.
  URL:      http://$HOST:$PORT/   (API: http://$HOST:$PORT/api/v1/, admin: http://$HOST:$PORT/admin/)
  Login:    admin / $(cat .run/login.txt)
  Account:  demo
  Token:    $(cat .run/token.txt)
  Logs:     .run/web.log (web), .run/worker.log (Celery worker), .run/beat.log (Celery beat)
Press Ctrl-C to stop all three.
INFO
wait -n "${pids[@]}" || true
