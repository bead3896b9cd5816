# The commands the README names. `make run` starts everything; `make test` tests it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test lint format worker flower clean

install: $(VENV)/.installed node_modules/.package-lock.json

# The lock files pin every package, what it pulls in included: two fresh
# machines install the same. Runtime alone (production): requirements.txt.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

## Resolve requirements.in and requirements-dev.in into the lock files again
## (after changing a pin there): every transitive package pinned.
.PHONY: lock
lock: install
	pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in

# The browser libraries, pinned by package-lock.json (npm ci writes this file last).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Migrate, seed the demo, then run web + workers + beat + stream processor until Ctrl-C;
## with REDIS_URL set, the streaming server and the live push too (pages are pushed).
LIVE_PROCESSES := web worker beat stream $(if $(REDIS_URL),streams push)
# Ctrl-C is how it ends, not an error: the shell waits (trap) for honcho to stop
# them all and takes honcho's status for Ctrl-C, 130, as success.
run: export DEBUG ?= 1
run: export LIVE_STREAM_URL ?= http://127.0.0.1:8001
# It is a development server by design: Django need not warn that it is one.
run: export DJANGO_RUNSERVER_HIDE_WARNING ?= true
run: install
	python manage.py migrate --noinput
	python manage.py migrate --noinput --database gateway
	python manage.py setup_demo
	trap : INT; honcho start -f Procfile $(LIVE_PROCESSES) || [ $$? -eq 130 ]

## The whole test suite (what CI runs).
test: install
	python -m pytest

## ruff, then mypy (its settings in pyproject.toml, with django-stubs' plugin).
lint: install
	ruff check .
	ruff format --check .
	mypy .

format: install
	ruff format .
	ruff check --fix .

## One worker for one app's queue: make worker QUEUE=payments
worker: install
	celery -A config worker -l INFO -Q $(QUEUE)

## Flower, the workers' monitor: http://127.0.0.1:5555 (FLOWER_BASIC_AUTH=user:password to log in).
FLOWER_ADDRESS ?= 127.0.0.1
FLOWER_PORT ?= 5555
flower: install
	celery -A config flower --address=$(FLOWER_ADDRESS) --port=$(FLOWER_PORT)

clean:
	rm -rf $(VENV) node_modules var staticfiles

## The benchmark: writes docs/benchmarks.md and .json (make bench ARGS="--quick").
## Uses the `bench` vhost and database unless CELERY_BROKER_URL / DATABASE_URL say otherwise.
.PHONY: bench
bench: install
	python -m bench $(ARGS)
