"""Settings for the ml-connector portal.

Every value comes from the environment (django-environ) and is checked here, so a bad value
stops the process at start-up instead of surfacing as a confusing error mid-sync. The embedded
default needs nothing else on the machine: SQLite and the django-q2 ORM broker. ``DATABASE_URL``
switches to PostgreSQL; ``Q_BROKER_URL`` (or ``REDIS_URL``) switches the task broker to Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

DEBUG = env.bool("DEBUG", default=False)
# Explicit development mode (the test suite, a developer's laptop): a fixed, public key and plain
# HTTP are allowed. Anything else must be given a key, or it refuses to start: credentials
# encrypted under a key that is in the source are not encrypted.
DEV_MODE = env.bool("PORTAL_DEV", default=False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdef"


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    key_file = env.str("SECRET_KEY_FILE", default="")
    if not key and key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"SECRET_KEY_FILE {key_file}: {exc.strerror}") from None
    if not key and (DEBUG or DEV_MODE):
        key = _DEV_SECRET
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. It encrypts the stored credentials: set SECRET_KEY (or SECRET_KEY_FILE, "
            "a file holding it) to a random value of at least 50 characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'. "
            "For development on throwaway data only, PORTAL_DEV=true uses a fixed, public key.")
    if len(key) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters (50 random ones recommended)")
    if key == _DEV_SECRET and not (DEBUG or DEV_MODE):
        raise ImproperlyConfigured("SECRET_KEY is the public development key: set a random one")
    return key


SECRET_KEY = _secret_key()
# Old keys stay readable during rotation: credentials encrypted with a fallback key are
# decrypted with it and re-encrypted with SECRET_KEY by `manage.py rotate_secrets`.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
# Salt(s) for django-fernet-encrypted-fields' key derivation; a list allows rotation too.
SALT_KEY = env.list("ENCRYPTION_SALT", default=["ml-connector-field-encryption"])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens stored as hashes, with an expiry (never in plaintext): see the security section
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "django_q",
    "axes",  # sign-in throttling, see the security section
    "accounts",
    "integrations",
]

MIDDLEWARE = [
    # One validated X-Request-ID per request, for the admin and the API alike (portal/middleware.py).
    "portal.middleware.RequestIDMiddleware",
    # Bodies over the limit are refused before anything reads them (portal/limits.py).
    "portal.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the API docs' static files without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes asks: turns a locked-out sign-in into its 429 page or JSON
    "axes.middleware.AxesMiddleware",
]

# Bodies: a connection or integration document is a few KiB; 256 KiB leaves room for bulk
# actions (1,000 ids) and refuses the megabytes that would only tie up a worker.
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=262_144)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# A pushed event is small: a larger body is refused (413) before it is read or stored.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=65_536)

ROOT_URLCONF = "portal.urls"

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

WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
_engine = DATABASES["default"]["ENGINE"]
if _engine.endswith("sqlite3"):
    # Several processes (web, qcluster, sandbox) share the file: wait for locks instead of
    # failing, and use WAL so readers don't block the writer. synchronous=NORMAL is WAL's
    # recommended pairing: no fsync per commit, never a corrupt file; a power cut may undo the
    # last commits, which the engine redoes idempotently (inclusive cursors, lookups first).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    _db_file = Path(DATABASES["default"]["NAME"])
    if str(_db_file) not in ("", ":memory:") and not str(_db_file).startswith("file:"):
        # The database holds encrypted credentials and the whole audit trail: owner-only. SQLite
        # gives its -wal and -shm files the database file's permissions.
        _db_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(_db_file, os.O_CREAT | os.O_WRONLY, 0o600))
        if _db_file.stat().st_mode & 0o077:
            _db_file.chmod(0o600)
elif not _engine.endswith("postgresql"):
    raise ImproperlyConfigured(f"DATABASE_URL must be SQLite or PostgreSQL, not {_engine}")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# Stored times are UTC; pages show them in this zone (the operators' local time).
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, even when empty
# Serve straight from the apps' static folders, so the demo needs no collectstatic step.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.api.authentication.TokenAuthentication",  # django-rest-knox: hashed, expiring
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=100),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ml-connector API",
    "DESCRIPTION": "Tenant-scoped access to connections, integrations, runs, records, mappings and audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # No CDN: Swagger UI's assets come from drf-spectacular-sidecar's static files, and the
    # online validator badge (a request to swagger.io) is off.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": True, "validatorUrl": None},
    # separate request and response shapes, so write-only secrets and read-only ids are clear
    "COMPONENT_SPLIT_REQUEST": True,
    # three models have a "status": name each choice set after its class
    "ENUM_NAME_OVERRIDES": {
        "RecordStatusEnum": "integrations.models.records.RecordStatus",
        "RunStatusEnum": "integrations.models.records.RunStatus",
        "MappingStatusEnum": "integrations.models.mappings.MappingStatus",
    },
}

# --- task queue (django-q2) ------------------------------------------------------------------
# django-q2's defaults are traps for sync work: max_attempts=0 retries forever, a `retry`
# shorter than the longest task hands the same task to a second worker, and catch_up replays
# every missed slot after downtime. Our own per-stream lock is the last line of defence.
Q_TIMEOUT = env.int("Q_TIMEOUT", default=1800)
Q_RETRY = env.int("Q_RETRY", default=Q_TIMEOUT + 300)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured("Q_RETRY must be greater than Q_TIMEOUT, or a task runs twice")
Q_BROKER_URL = env.str("Q_BROKER_URL", default=env.str("REDIS_URL", default=""))
Q_CLUSTER = {
    "name": "ml-connector",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=1),
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "label": "Task queue",
    "poll": 1,
}
if Q_BROKER_URL:
    if not Q_BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("Q_BROKER_URL must be a redis:// URL")
    Q_CLUSTER["redis"] = Q_BROKER_URL
else:
    Q_CLUSTER["orm"] = "default"
if Q_CLUSTER["max_attempts"] < 1:
    raise ImproperlyConfigured("Q_MAX_ATTEMPTS must be at least 1 (0 means retry forever)")

# --- the portal ------------------------------------------------------------------------------
# A stream lock whose run has not heartbeaten for this long is considered dead and reclaimed.
SYNC_LOCK_STALE_SECONDS = env.int("SYNC_LOCK_STALE_SECONDS", default=600)
# How long a run waits for a connection's only session (SYSPRO's licence seat) that another run
# of the same connection holds, before it stops to be retried by the next schedule.
SYNC_SEAT_WAIT_SECONDS = env.int("SYNC_SEAT_WAIT_SECONDS", default=120)
# Default per-run API call budget (0 = unlimited); integrations may override it.
SYNC_CALL_BUDGET = env.int("SYNC_CALL_BUDGET", default=0)
# A run that reached a connection's call budget continues by itself after this many seconds
# (per integration: the ``continue_after_seconds`` setting).
SYNC_CONTINUE_AFTER_SECONDS = env.int("SYNC_CONTINUE_AFTER_SECONDS", default=900)
# Writes of one page a connection may have in flight at once where a flow sends one call per
# document (Sage X3 api1 has no batch); per connection: the ``write_concurrency`` setting.
# 1 sends them one after another. Capped at 16 (integrations.systems.concurrency).
SYNC_WRITE_CONCURRENCY = env.int("SYNC_WRITE_CONCURRENCY", default=4)
# Streams that allow it (``read_ahead``: every reference stream, and the record streams that declare
# it) read their next page on a helper thread while the current one is transformed and written (or
# stored): the source's answer overlaps the portal's work.
SYNC_READ_AHEAD = env.bool("SYNC_READ_AHEAD", default=True)
# Streams that allow it (``RecordStream.pipelined``) write a page on a helper thread while the next
# one is transformed and the one before is booked: the portal's work overlaps the target's answer.
SYNC_PIPELINE = env.bool("SYNC_PIPELINE", default=True)
# HTTP policy for every vendor client.
HTTP_TIMEOUT_SECONDS = env.float("HTTP_TIMEOUT_SECONDS", default=30.0)
HTTP_MAX_RETRIES = env.int("HTTP_MAX_RETRIES", default=4)
HTTP_BACKOFF_BASE_SECONDS = env.float("HTTP_BACKOFF_BASE_SECONDS", default=0.5)
HTTP_BACKOFF_MAX_SECONDS = env.float("HTTP_BACKOFF_MAX_SECONDS", default=30.0)
# Warn in the console this many days before an X3 refresh token runs out.
REFRESH_TOKEN_WARNING_DAYS = env.int("REFRESH_TOKEN_WARNING_DAYS", default=5)
# Month-end reconciliation runs on this day of each month (1-28), for the month before.
RECONCILE_DAY = env.int("RECONCILE_DAY", default=3)
if not 1 <= RECONCILE_DAY <= 28:
    raise ImproperlyConfigured("RECONCILE_DAY must be a day of the month from 1 to 28")

# --- alerts (integrations/engine/alerts.py) ---------------------------------------------------
# Mail goes through Django's mail settings; without EMAIL_BACKEND, development prints messages on
# the console and production uses SMTP (EMAIL_HOST...), so a forgotten setting never mails the world.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
                        if (DEBUG or DEV_MODE) else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ml-connector <alerts@localhost>")
# Per-tenant defaults (each tenant's alert settings may change them).
ALERT_HELD_HOURS = env.int("ALERT_HELD_HOURS", default=24)
ALERT_FAILED_THRESHOLD = env.int("ALERT_FAILED_THRESHOLD", default=10)
# An integration is stale when no stream has succeeded within this many of its schedule's periods.
ALERT_STALE_FACTOR = env.float("ALERT_STALE_FACTOR", default=2.0)
# How often the periodic evaluation (stale, held, expiring) runs, and when the daily digest goes out.
ALERT_EVALUATE_MINUTES = env.int("ALERT_EVALUATE_MINUTES", default=5)
ALERT_DIGEST_HOUR = env.int("ALERT_DIGEST_HOUR", default=7)
# The outgoing webhook: its own timeout and retries (backoff as HTTP_BACKOFF_*).
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
ALERT_WEBHOOK_MAX_RETRIES = env.int("ALERT_WEBHOOK_MAX_RETRIES", default=4)
if not 0 <= ALERT_DIGEST_HOUR <= 23:
    raise ImproperlyConfigured("ALERT_DIGEST_HOUR must be an hour from 0 to 23")
if ALERT_EVALUATE_MINUTES < 1 or ALERT_STALE_FACTOR < 1 or ALERT_WEBHOOK_MAX_RETRIES < 0:
    raise ImproperlyConfigured("ALERT_EVALUATE_MINUTES and ALERT_STALE_FACTOR must be at least 1, "
                               "ALERT_WEBHOOK_MAX_RETRIES at least 0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "integrations.systems.redaction.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"], "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}

# --- security ----------------------------------------------------------------------------------
# HTTPS everywhere outside development: redirect, Secure cookies, HSTS. `make demo` serves plain
# HTTP on localhost and says PORTAL_HTTPS=false; `check --deploy` is clean with it on.
HTTPS = env.bool("PORTAL_HTTPS", default=not (DEBUG or DEV_MODE))
# Behind a reverse proxy that terminates TLS, Django sees plain HTTP: trust the proxy's
# X-Forwarded-Proto (and its X-Forwarded-For for throttling) only when told it is there, since
# any client can send those headers to a portal that is reached directly.
BEHIND_PROXY = env.bool("PORTAL_BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0  # one year
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
# The preload flag only offers the domain to browsers' built-in lists (submission is a separate,
# deliberate step); a domain that must keep plain-HTTP subdomains sets it false.
SECURE_HSTS_PRELOAD = HTTPS and env.bool("PORTAL_HSTS_PRELOAD", default=True)

# Content-Security-Policy (django-csp). Nothing inline runs: the admin needs no inline script,
# and the two inline blocks we serve (the console's <style>, Swagger UI's start-up script) carry
# the per-request nonce. Style *attributes* (the console's status badge colours) stay allowed:
# they cannot run code. Swagger UI draws its icons from data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Sign-in throttling (django-axes) on /admin/login/ and /api/auth/token/. Failures count per
# (username, address) and, across usernames, per address; past either limit every sign-in
# from there is refused with a 429 saying when to come back, without checking the password.
# A failure more during the lock starts the cool-off again.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out sign-ins
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "portal.throttling.PortalAxesHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)  # per username and address
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)  # per address, any username
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
# which rows a successful sign-in clears: that username's from that address, never the address's
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "portal.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "portal.throttling.lockout_response"
# failures are audited (portal.throttling) and kept by axes until the cool-off ends; a log
# row per successful sign-in would only grow
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # its start-up line names only the (username, address) limit, not ours per address
if LOGIN_ADDRESS_FAILURE_LIMIT < AXES_FAILURE_LIMIT or AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("LOGIN_ADDRESS_FAILURE_LIMIT must be at least LOGIN_FAILURE_LIMIT, which is at least 1")

# Sign-up (accounts/signup.py): per network address and window, at most this many attempts
# (valid or not) and this many new organisations; past either, the page answers 429.
SIGNUP_RATE_WINDOW_MINUTES = env.int("SIGNUP_RATE_WINDOW_MINUTES", default=60)
SIGNUP_ATTEMPTS_PER_ADDRESS = env.int("SIGNUP_ATTEMPTS_PER_ADDRESS", default=20)
SIGNUP_TENANTS_PER_ADDRESS = env.int("SIGNUP_TENANTS_PER_ADDRESS", default=3)
if min(SIGNUP_RATE_WINDOW_MINUTES, SIGNUP_ATTEMPTS_PER_ADDRESS, SIGNUP_TENANTS_PER_ADDRESS) < 1:
    raise ImproperlyConfigured("SIGNUP_RATE_WINDOW_MINUTES, SIGNUP_ATTEMPTS_PER_ADDRESS and SIGNUP_TENANTS_PER_ADDRESS "
                               "must be at least 1")

# Invitations (accounts/invites.py): at most this many by one person in any hour; past it the
# invite page answers 429 and nothing is sent.
INVITES_PER_HOUR = env.int("INVITES_PER_HOUR", default=20)
if INVITES_PER_HOUR < 1:
    raise ImproperlyConfigured("INVITES_PER_HOUR must be at least 1")

# API tokens (django-rest-knox): only a SHA-512 digest is stored (the token is 256 random bits:
# nothing to guess, so no salt or slow hash is needed); each token expires.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=10)),
    "TOKEN_PREFIX": "mlc_",  # recognisable by secret scanners
    "AUTH_HEADER_PREFIX": "Token",  # the header clients already send
}
# django-axes reports every sign-in at INFO; failures and lockouts (WARNING) are what matters
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
