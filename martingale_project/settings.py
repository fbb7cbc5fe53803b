"""Settings, read from the environment (and an optional .env file) with django-environ.

Every variable is listed in README.md and .env.example.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "ninja",  # its static Swagger UI for /api/v1/docs (no CDN)
    "settings_app",
    "lanes",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "martingale_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "martingale_project.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Persistent connections: a request reuses its thread's connection (gunicorn's gthread workers keep
# their threads) instead of connecting, setting the session up and closing again; the health check
# pings a reused connection once per request and reconnects if the database went away. A
# `conn_max_age` on DATABASE_URL wins; DB_CONN_MAX_AGE=0 closes after every request.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=600))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes SQLite's write lock up front, so two writers queue instead of
    # both reading the same state (select_for_update is a no-op there).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # The session clock in UTC: the services read the database's clock (SYSDATE) as the time of
    # each change (SPEC §10), and Django stores UTC. JSON_ARRAYAGG (lanes.loading) is bounded by
    # group_concat_max_len on MariaDB: 1 GiB rather than 1 MiB, for an account with a long queue.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "init_command": "SET time_zone = '+00:00', group_concat_max_len = 1073741824",
        }
    )
    DATABASES["default"].setdefault("TEST", {}).update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# django-axes first: it refuses a locked-out username + address before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Celery: Redis in production; kombu's filesystem transport needs no server at all.
CELERY_BROKER_FOLDER = env("CELERY_BROKER_FOLDER", default=str(BASE_DIR / ".run" / "broker"))
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": CELERY_BROKER_FOLDER,
        "data_folder_out": CELERY_BROKER_FOLDER,
        "processed_folder": CELERY_BROKER_FOLDER + "-processed",
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The lane engine (SPEC.md).
MARTINGALE_LEGACY_FALLBACK = env.bool("MARTINGALE_LEGACY_FALLBACK", default=True)
MARTINGALE_STATUS_INTERVAL_SECONDS = env.int("MARTINGALE_STATUS_INTERVAL_SECONDS", default=60)
MARTINGALE_STUCK_LANE_HOURS = env.float("MARTINGALE_STUCK_LANE_HOURS", default=24)
MARTINGALE_TRADE_TIMEOUT_SECONDS = env.int("MARTINGALE_TRADE_TIMEOUT_SECONDS", default=900)
MARTINGALE_DASHBOARD_REFRESH_SECONDS = env.int("MARTINGALE_DASHBOARD_REFRESH_SECONDS", default=5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# HTTPS. Production (DEBUG false) is HTTPS-only unless told otherwise: behind a TLS-terminating proxy that
# sets X-Forwarded-Proto, SECURE_HTTPS turns on the HTTPS redirect, secure cookies and HSTS, so that
# `manage.py check --deploy` has nothing to say. SECURE_HTTPS=false serves plain HTTP (README "Security").
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=SECURE_HTTPS)
if SECURE_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)  # a year
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Request bodies. The bot API refuses bodies over 64 KiB itself (413 JSON, lanes/api/errors.py); these bound
# what Django reads for the dashboard's and the admin's forms (a larger one is a 400).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000  # the admin's bulk actions post one field per selected row

# The cache: bad-token counts of the bot API (lanes/throttle.py). Each process has its own unless CACHE_URL
# names a Redis that every app server and worker shares.
CACHE_URL = env("CACHE_URL", default="")
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CACHE_URL must be a redis://, rediss:// or unix:// URL")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "martingale",
            # An unreachable Redis must not hang API requests: the throttle lets them through (and logs).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "martingale",
            "OPTIONS": {"MAX_ENTRIES": 10000},  # two keys per misbehaving client
        }
    }

# Bot API tokens (SPEC §9): from the (N/2)-th bad or missing token in a window, each 401 is delayed (growing
# to MARTINGALE_AUTH_MAX_DELAY_SECONDS); after N, every request from that client is 429 until the window
# ends. The window starts with the client's first bad token. N = 0 turns it off.
MARTINGALE_AUTH_FAILURES = env.int("MARTINGALE_AUTH_FAILURES", default=10)
MARTINGALE_AUTH_WINDOW_SECONDS = env.int("MARTINGALE_AUTH_WINDOW_SECONDS", default=60)
MARTINGALE_AUTH_MAX_DELAY_SECONDS = env.float("MARTINGALE_AUTH_MAX_DELAY_SECONDS", default=0.25)
# Addresses (or networks) of reverse proxies: for a request from one of them, the client is the last address
# in X-Forwarded-For that is not a proxy's. Empty: the client is REMOTE_ADDR.
MARTINGALE_TRUSTED_PROXIES = env.list("MARTINGALE_TRUSTED_PROXIES", default=[])
if MARTINGALE_AUTH_FAILURES < 0 or MARTINGALE_AUTH_WINDOW_SECONDS < 1 or not 0 <= MARTINGALE_AUTH_MAX_DELAY_SECONDS <= 5:
    raise ImproperlyConfigured(
        "MARTINGALE_AUTH_FAILURES must be 0 or more, MARTINGALE_AUTH_WINDOW_SECONDS 1 or more and "
        "MARTINGALE_AUTH_MAX_DELAY_SECONDS from 0 to 5"
    )

# Logins (the dashboard's and the admin's), with django-axes: after 5 failures for one username from one
# address, that pair is refused for 15 minutes after its last failure; other users and addresses are not.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "lanes.throttle.client_address"  # the same client as the API's throttle
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login (the table would only grow)
AXES_VERBOSE = False  # no start-up banner on every manage.py command; failures and lockouts are still logged

# Conditional unique constraints are skipped on MySQL/MariaDB (see lanes.models.Trade).
SILENCED_SYSTEM_CHECKS = ["models.W036"]

# Celery beat and worker (lanes/tasks.py). A run that waited longer than its expiry (the worker was
# down) is dropped rather than replayed: the next one is due anyway.
SIMULATOR_KEEP_DAYS = env.int("SIMULATOR_KEEP_DAYS", default=7)  # a simulator page's run untouched this long is deleted
MARTINGALE_QUEUE_UPKEEP_SECONDS = env.float("MARTINGALE_QUEUE_UPKEEP_SECONDS", default=5)
CELERY_BEAT_SCHEDULE = {
    "martingale-status-log": {
        "task": "lanes.tasks.log_status",
        "schedule": MARTINGALE_STATUS_INTERVAL_SECONDS,
        "options": {"expires": max(MARTINGALE_STATUS_INTERVAL_SECONDS, 30)},
    },
    "martingale-queue-upkeep": {
        "task": "lanes.tasks.serve_queues",
        "schedule": MARTINGALE_QUEUE_UPKEEP_SECONDS,
        "options": {"expires": max(MARTINGALE_QUEUE_UPKEEP_SECONDS, 30)},
    },
    "martingale-stats-roll-up": {
        "task": "lanes.tasks.roll_up_stats",
        "schedule": 60,
        "options": {"expires": 60},
    },
    "martingale-simulations-prune": {
        "task": "lanes.tasks.prune_simulations",
        "schedule": 3600,
        "options": {"expires": 3600},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".run" / "celerybeat-schedule")  # `--schedule` overrides
# After a broker restart the worker and beat reconnect, retrying for ever (the default stops at 100).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True  # tasks are short; Celery 6's default
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The filesystem transport keeps its exchange tables in ./control unless told otherwise.
    CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"] = CELERY_BROKER_FOLDER + "-control"
