"""Django settings, read from the environment with embedded defaults.

With nothing set, the console runs on SQLite, the in-memory channel layer and kombu's
filesystem broker, all under ./var/. Production (CONSOLE_ENV=production) must say where
its database is, which hosts it answers for and what its secret key is; anything missing
stops the start with one line naming it.
"""

from pathlib import Path

import dj_database_url

from console.env import (
    SettingsError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    persisted_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONSOLE_VAR_DIR", str(BASE_DIR / "var"))).resolve()

CONSOLE_ENV = env_str("CONSOLE_ENV", "development")
PRODUCTION = CONSOLE_ENV == "production"
# Off unless asked for (DEBUG=1): the debug page shows settings and source to anyone
# who can make a request fail, and `make run` must be safe as it comes (issue 14).
DEBUG = env_bool("DEBUG", default=False)


def _missing_production_settings() -> list[str]:
    required = {
        "SECRET_KEY": env_secret("SECRET_KEY"),
        "DATABASE_URL": env_secret("DATABASE_URL"),
        "ALLOWED_HOSTS": env_str("ALLOWED_HOSTS"),
    }
    return [name for name, value in required.items() if not value]


if PRODUCTION and (missing := _missing_production_settings()):
    raise SettingsError(f"CONSOLE_ENV=production requires {' and '.join(missing)} to be set")

SECRET_KEY = env_secret("SECRET_KEY") or persisted_secret(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",  # first: its runserver replaces Django's, so dev serves ASGI too
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # only for its bundled Swagger UI files: /api/docs works offline
    "django_prometheus",
    "console.core",
    "console.accounts",
    "console.clusters",
    "console.events",
    "console.alerts",
    "console.releases",
    "console.runbooks",
    "console.reports",
    "console.notifications",
    "console.collector",
    "console.dashboard",
    "console.backups",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.core.security.SecurityHeadersMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

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

# django_prometheus wraps the database backends so query counts and latencies are metrics.
_PROMETHEUS_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
_database_url = env_secret("DATABASE_URL")
_conn_max_age = env_int("DB_CONN_MAX_AGE", 0)
_pool_size = env_int("DB_POOL_SIZE", 8)
if _database_url:
    _database = dj_database_url.parse(
        _database_url, conn_max_age=_conn_max_age, conn_health_checks=True
    )
    # A psycopg pool per process. Under daphne each request runs in a fresh thread, so
    # CONN_MAX_AGE never got to reuse a connection: every request paid PostgreSQL's
    # connect (a backend fork) and teardown. Django refuses a pool together with
    # CONN_MAX_AGE, so DB_CONN_MAX_AGE > 0 (or DB_POOL_SIZE=0) turns the pool off.
    _postgres = _database["ENGINE"] == "django.db.backends.postgresql"
    if _postgres and _pool_size > 0 and _conn_max_age == 0:
        _database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_size,
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
        }
else:
    # `make run`'s console, worker and collector share this file. SQLite's default
    # deferred transactions take the write lock half-way and fail at once with
    # "database is locked" when another process holds it; IMMEDIATE takes it at BEGIN
    # and waits up to `timeout`, and WAL lets readers go on while one process writes.
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "console.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
_database["ENGINE"] = _PROMETHEUS_ENGINES.get(_database["ENGINE"], _database["ENGINE"])
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # In-memory layers do not cross processes; consumers poll the event journal instead.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The login throttle's counts (console/accounts/throttle.py) in Redis when there is one, so
# every console process shares them: per process, each of the Kubernetes deployment's
# replicas allowed its own quota and ignored the others' lockouts. "local" is this
# process's own, which the throttle falls back to while Redis does not answer.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}
if REDIS_URL:
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "console"),
        # A sign-in must not hang on a Redis that does not answer.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }

# Release wheels (wheels/<sha256>.whl) and their installed environments (envs/<name>/).
RELEASES_DIR = Path(env_str("RELEASES_DIR", str(VAR_DIR / "releases"))).resolve()
# The local cluster's layout root (`manage.py up`'s nodes), for the local node manager.
LOCAL_CLUSTER_DIR = Path(env_str("LOCAL_CLUSTER_DIR", str(VAR_DIR / "cluster"))).resolve()

# Celery reads every CELERY_* setting here (see console/celery.py).
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Without this kombu writes its broadcast exchange files to ./control.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True  # RunbookRun rows are the record, not a result backend
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Scheduled backups and the backup alert rules (console/backups/tasks.py); the worker
# that `manage.py up` starts runs beat too (-B), its schedule state in var/.
CELERY_BEAT_SCHEDULE = {
    "backups-tick": {"task": "backups.tick", "schedule": 60.0},
    # Notifications are planned by the collector's tick too; beat is the fallback for a
    # deployment whose collector is down, and plans the scheduled reports when their
    # hour has come (console/notifications/dispatch.py).
    "notifications-dispatch": {"task": "notifications.dispatch", "schedule": 30.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Backup files (0700), and the layout of the local cluster a restore rewrites.
BACKUPS_DIR = Path(env_str("BACKUPS_DIR", str(VAR_DIR / "backups"))).resolve()
BACKUPS_LOCAL_CLUSTER_DIR = Path(
    env_str("BACKUPS_LOCAL_CLUSTER_DIR", str(VAR_DIR / "cluster"))
).resolve()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Until a front proxy or whitenoise serves /static/, daphne serves it through Django.
SERVE_STATIC = env_bool("CONSOLE_SERVE_STATIC", default=not PRODUCTION)

# The SLO targets the reports judge against (percent, milliseconds).
SLO_AVAILABILITY_PCT = env_float("SLO_AVAILABILITY_PCT", 99.9)
SLO_SUCCESS_PCT = env_float("SLO_SUCCESS_PCT", 99.0)
SLO_P95_MS = env_float("SLO_P95_MS", 100.0)

# Notifications (console/notifications/): delivery attempts before giving up, the first
# retry's delay (doubling after each failure, capped), how often an unacknowledged
# firing alert is sent again (0: never), failures in a row that raise a channel alert,
# the hour (UTC) the scheduled reports go out, and who e-mails come from. The SMTP
# server is Django's EMAIL_* settings; its password comes from the env var a channel names.
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
NOTIFY_RETRY_BASE_S = env_float("NOTIFY_RETRY_BASE_S", 10.0)
NOTIFY_RETRY_MAX_S = env_float("NOTIFY_RETRY_MAX_S", 600.0)
NOTIFY_REPEAT_S = env_int("NOTIFY_REPEAT_S", 3600)
NOTIFY_FAILING_AFTER = env_int("NOTIFY_FAILING_AFTER", 3)
NOTIFY_REPORTS_HOUR = env_int("NOTIFY_REPORTS_HOUR", 7)
NOTIFY_TIMEOUT_S = env_float("NOTIFY_TIMEOUT_S", 5.0)
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "raftops@localhost")

# Where `manage.py up` serves the console (daphne).
CONSOLE_HOST = env_str("CONSOLE_HOST", "127.0.0.1")
CONSOLE_PORT = env_int("CONSOLE_PORT", 8000)

# The local daemon cluster `manage.py up` starts: node i serves HTTP on DAEMON_HTTP_PORT + i.
DAEMON_HTTP_PORT = env_int("DAEMON_HTTP_PORT", 8080)
DAEMON_TOKEN = env_secret("DAEMON_TOKEN")

# Security headers and cookies (SECURITY.md). The CSP is console.core.security's.
DEFAULT_EXCEPTION_REPORTER_FILTER = "console.core.security.MaskingReporterFilter"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    # HSTS only makes sense behind TLS, which production is; 0 turns it off.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
# X-Forwarded-Proto is trusted only when the operator says a proxy sets it: otherwise
# any client could claim https (and get secure-only behaviour on plain http).
if env_bool("CONSOLE_TRUSTED_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: the collector and the release check poll nodes
    # many times a second, which would bury everything else.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
