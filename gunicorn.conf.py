"""gunicorn's settings for Martingale Lanes (README "Security" and "Production").

gunicorn reads ./gunicorn.conf.py by itself, so a plain `gunicorn martingale_project.wsgi` run from the
project folder uses this file; options given on the command line win over it.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# gthread rather than sync: bots poll GET /api/v1/trades/{id} while a trade is queued, and a thread
# worker keeps their connections alive between polls (sync closes every connection after one request
# and ignores keepalive); a slow client or a throttled bad token (a 401 delayed up to 0.25 s) holds one
# thread, not a whole process. Requests are short and the database does the waiting, so a few threads
# per process are enough. Each thread has its own database connection: workers × threads connections.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))

keepalive = 5  # seconds an idle client connection stays open
timeout = 30  # a worker silent this long is killed and replaced
graceful_timeout = 30  # on restart, requests under way get this long to finish

# What gunicorn refuses before Django sees the request (gunicorn answers these with its own small HTML
# page, not JSON): a request line over limit_request_line bytes → 414; more than limit_request_fields
# header fields or one over limit_request_field_size bytes → 431; malformed HTTP → 400. 8190 is the
# largest request line gunicorn allows (its default is 4094), so long query strings reach Django, which
# answers them with JSON under /api/.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = "-"  # stdout
errorlog = "-"  # stderr
