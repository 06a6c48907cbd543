# ml-connector: `make demo` starts the portal with its sandbox demo; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: venv demo test test-postgres lint system-deps services

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

# Debian packages the browser tests need (Chromium; Playwright drives it, no browser download).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The demo's own random key (owner-only), made once: credentials are never encrypted under a
# key that is in the source. Plain HTTP on localhost, so no HTTPS redirect or Secure cookies.
var/secret_key:
	mkdir -p var && chmod 700 var
	umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

demo: venv var/secret_key
	rm -f var/demo.sqlite3 var/demo.sqlite3-wal var/demo.sqlite3-shm
	SECRET_KEY_FILE=var/secret_key PORTAL_HTTPS=false DATABASE_URL=sqlite:///var/demo.sqlite3 $(PY) manage.py demo \
		--x3-transport $(or $(X3_TRANSPORT),rest)

test: venv system-deps
	$(PY) -m pytest -q

# The same suite on PostgreSQL with the Redis broker (services started if they are down).
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 \
		--save "" --appendonly no --dir /tmp
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; \
		echo "PostgreSQL or Redis did not start" >&2; exit 1

test-postgres: venv system-deps services
	DATABASE_URL=$(PG_URL) Q_BROKER_URL=$(REDIS_URL) $(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .
