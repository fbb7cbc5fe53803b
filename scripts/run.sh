#!/usr/bin/env bash
# What `make run` runs: migrates, makes (once) a demo account, an admin login and a bot token, then runs
# the web server, a Celery worker and Celery beat in the background until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
mkdir -p .run

# dotenv KEY: KEY's value in .env, if any (the app reads .env itself; run.sh needs DEBUG, HOST, PORT).
dotenv() {
  [ -f .env ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1[[:space:]]*=[[:space:]]*//p" .env | tail -n 1 \
    | sed "s/^\"\(.*\)\"$/\1/; s/^'\(.*\)'$/\1/"
}
DEBUG=${DEBUG:-$(dotenv DEBUG)}
export DEBUG=${DEBUG:-true}
HOST=${HOST:-$(dotenv HOST)}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-$(dotenv PORT)}
PORT=${PORT:-8000}
case "${DEBUG,,}" in true|on|ok|y|yes|1) debug=1 ;; *) debug="" ;; esac  # django-environ's true values

# Without DEBUG the settings demand a SECRET_KEY: make one once and keep it in .run/.
if [ -z "$debug" ] && [ -z "${SECRET_KEY:-$(dotenv SECRET_KEY)}" ]; then
  [ -s .run/secret_key.txt ] || (umask 077; $py -c 'import secrets; print(secrets.token_urlsafe(50))' >.run/secret_key.txt)
  SECRET_KEY=$(cat .run/secret_key.txt)
  export SECRET_KEY
fi

# django_says CODE: the last line CODE prints, run with Django set up.
django_says() { $py manage.py shell -v 0 -c "$1" | tail -n 1; }

$py manage.py migrate --noinput
# kombu's filesystem transport (the default broker) needs its folders to exist.
$py manage.py shell -v 0 -c '
import os
from django.conf import settings
if settings.CELERY_BROKER_URL.startswith("filesystem://"):
    os.makedirs(settings.CELERY_BROKER_FOLDER, exist_ok=True)
    os.makedirs(settings.CELERY_BROKER_FOLDER + "-processed", exist_ok=True)'

# The demo account; on later runs this fails because it already exists, which is fine.
$py manage.py martingale account add demo --base-amount 1.00 --multiplier 1.5 --balance 1000 2>&1 || true
# A second one in the other ladder mode (SPEC §11): stakes that recover the losses plus the base trade's
# profit at the payout rate, at most 25.00 a stake, at most 100.00 at risk, locked for the day after a loss
# of 50.00. Set once, when the account is made.
$py manage.py martingale account add demo_recover --base-amount 1.00 --multiplier 1.5 --balance 1000 >/dev/null 2>&1 \
  && $py manage.py martingale account set demo_recover --ladder-mode recover --max-stake 25.00 --max-exposure 100.00 \
    --daily-stop-loss 50.00 || true

state=$(django_says '
from django.contrib.auth import get_user_model
from lanes.models import ApiToken
print(get_user_model().objects.filter(username="admin").exists(), ApiToken.objects.filter(name="demo-bot").exists())')
read -r admin_exists token_exists <<<"$state"

# The admin login: the password is made once and kept in .run/login.txt.
if [ "$admin_exists" = True ]; then
  [ -s .run/login.txt ] || echo "Note: user admin already exists and .run/login.txt is missing; set a password with: $py manage.py changepassword admin"
else
  [ -s .run/login.txt ] || (umask 077; $py -c 'import secrets; print(secrets.token_urlsafe(12))' >.run/login.txt)
  DJANGO_SUPERUSER_PASSWORD=$(cat .run/login.txt) \
    $py manage.py createsuperuser --noinput --username admin --email admin@example.com
fi
password=$(cat .run/login.txt 2>/dev/null || echo "(unknown, see the note above)")

# The bot token: shown once by `token create` (its last line), so it is kept in .run/token.txt.
if [ "$token_exists" = False ]; then
  rm -f .run/token.txt  # a token saved for a database that has since been reset
  created=$($py manage.py martingale token create demo-bot --account demo --account demo_recover)
  echo "$created"
  (umask 077; tail -n 1 <<<"$created" >.run/token.txt)
elif [ ! -s .run/token.txt ]; then
  echo "Note: token demo-bot exists but .run/token.txt is missing; make another with: $py manage.py martingale token create NAME --account demo"
fi
token=$(cat .run/token.txt 2>/dev/null || echo "(unknown, see the note above)")

pids=()
STOP_SECONDS=15  # how long stop() waits for the three to shut down warm
stop() {  # TERM, up to STOP_SECONDS for a warm shutdown, then KILL what is left
  trap - EXIT INT TERM
  [ ${#pids[@]} -eq 0 ] && return
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # A Celery worker whose pool processes got the TERM too (the whole process group signalled, as
  # `timeout` or systemd do) waits for them forever.
  for _ in $(seq 1 $((STOP_SECONDS * 10))); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "${pids[@]}" 2>/dev/null; then
    echo "Still running after ${STOP_SECONDS} s: killed."
    pkill -KILL -P "$(IFS=,; echo "${pids[*]}")" 2>/dev/null || true
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  wait || true
}
trap stop EXIT
trap 'exit 130' INT TERM  # leave through the EXIT trap

# The children ignore Ctrl-C (background jobs of a script do), so they stop only through the trap.
if [ -n "$debug" ]; then
  # gunicorn does not serve static files; runserver does when DEBUG is on.
  $py manage.py runserver "$HOST:$PORT" --noreload >>.run/web.log 2>&1 &
else
  # gunicorn.conf.py sets the workers, threads and request limits. It serves plain HTTP here, so the HTTPS
  # redirect of production settings stays off unless SECURE_HTTPS says otherwise (environment or .env).
  secure_https=${SECURE_HTTPS:-$(dotenv SECURE_HTTPS)}
  HOST=$HOST PORT=$PORT SECURE_HTTPS=${secure_https:-false} .venv/bin/gunicorn martingale_project.wsgi \
    -c gunicorn.conf.py --access-logfile .run/web.log --error-logfile .run/web.log >>.run/web.log 2>&1 &
fi
pids+=($!)
.venv/bin/celery -A martingale_project worker -l info --logfile .run/worker.log >>.run/worker.log 2>&1 &
pids+=($!)
.venv/bin/celery -A martingale_project beat -l info --logfile .run/beat.log \
  --schedule .run/celerybeat-schedule >>.run/beat.log 2>&1 &
pids+=($!)

# Wait (up to ~20 s) until the web server accepts connections, so the URL below works.
$py - "$HOST" "$PORT" <<'PY' || echo "Warning: the web server does not answer yet; see .run/web.log"
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1].strip("[]"), int(sys.argv[2])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit(1)
PY

url_host=$HOST
[ "$url_host" = 0.0.0.0 ] && url_host=127.0.0.1
cat <<INFO

Martingale Lanes is running (DEBUG=$DEBUG).
  URL:      http://$url_host:$PORT/   (API: http://$url_host:$PORT/api/v1/, admin: http://$url_host:$PORT/admin/)
  Login:    admin / $password   (saved in .run/login.txt)
  Accounts: demo (ladder mode multiplier), demo_recover (ladder mode recover, max stake, max exposure, stop-loss)
  Token:    $token   (bot token for both accounts, saved in .run/token.txt)
  Logs:     web server .run/web.log, Celery worker .run/worker.log, Celery beat .run/beat.log
  PIDs:     web ${pids[0]}, worker ${pids[1]}, beat ${pids[2]}
Press Ctrl-C to stop all three.
INFO

# Run until Ctrl-C, or until one of the three exits (then the trap stops the other two).
status=0
wait -n "${pids[@]}" || status=$?
echo "A process exited (status $status); stopping the others. See the logs in .run/." >&2
exit "$status"
