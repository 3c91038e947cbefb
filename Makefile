# CrisisMon: `make setup`, `make run` (the local stack), `make test` (what CI runs), `make bench`, `make soak`,
# `make test-compose` (docker-compose.yml run for real; part of `make test` too).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Commands from system packages that a target needs (apt-get installs those missing): the local
# broker's java and mvn, and for the tests kcat, promtool (with prometheus), chromium, dockerd and
# debootstrap too.
SYSTEM_TOOLS := java mvn

.PHONY: setup system-deps run test test-compose lint format bench soak broker-jars

setup: $(VENV)/.compiled

# Re-installs only when the dependencies change; `make setup` twice does nothing the second time.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

# The engine's core compiled by mypyc (setup.py), again whenever its source changes: with the
# venv's mypy and pydantic, so without an isolated build (tests/test_compiled_core.py checks it).
$(VENV)/.compiled: $(VENV)/.installed setup.py $(wildcard services/core/*.py)
	PYTHON=$(BIN)/python bash deploy/system-deps.sh gcc python-headers
	CRISISMON_COMPILE_CORE=1 $(BIN)/pip install --quiet --no-build-isolation --no-deps --editable .
	touch $@

# Quick when nothing is missing: no apt-get at all. .ci/run reaches it through `make test`.
system-deps:
	bash deploy/system-deps.sh $(SYSTEM_TOOLS)

# The local broker's jars, from Maven Central into ~/.cache/crisismon (once per machine and version):
# the default Kafka version's, and the previous line's, which `make test` checks too.
broker-jars: setup system-deps
	$(BIN)/python -c 'from devtools.broker import KAFKA_VERSION_PREVIOUS as previous, resolve_jars; \
	  print(resolve_jars(), resolve_jars(previous))'

# The whole local stack replaying the article's crisis; serves until Ctrl-C.
run: broker-jars
	$(BIN)/crisismon demo

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/crisismon schemas export --check

# The whole suite runs on the default Kafka version; the broker tests and the pipeline's core
# stories on the previous line (3.9) too.
PIPELINE_ON_PREVIOUS_KAFKA := test_the_article_live_gives_the_backtests_alerts \
	test_a_killed_worker_restarts_without_losing_or_renaming_an_alert \
	test_a_worker_restarted_at_once_after_sigkill_never_hangs

test: SYSTEM_TOOLS += kcat promtool chromium dockerd debootstrap openssl
test: system-deps lint broker-jars
	$(BIN)/python -m pytest
	CRISISMON_KAFKA_VERSION=$$($(BIN)/python -c 'from devtools.broker import KAFKA_VERSION_PREVIOUS as v; print(v)') \
	  $(BIN)/python -m pytest tests/test_broker.py $(addprefix tests/test_pipeline.py::,$(PIPELINE_ON_PREVIOUS_KAFKA))

# The compose stack built and run in Docker (tests/test_compose.py): it starts dockerd if none runs,
# as root, and builds Docker Compose from Go modules if the machine has no Compose v2.
test-compose: SYSTEM_TOOLS += dockerd debootstrap
test-compose: system-deps broker-jars
	$(BIN)/python -m pytest tests/test_compose.py

# One broker and one run (tests/bench/__main__.py, BENCH_OPTIONS="--events 20000"): events per
# second through a plain consumer, a no-op Faust agent and the worker, the worker's
# producer-to-output latency at 500 events/s offered, its state for a busy dyad and its peak
# memory; then a GDELT backtest beside pyarrow's parse-only time (BENCH_OPTIONS="--backtest-rows
# 200000"); then one Markdown table of it all beside the targets (the README's). Benchmarks, not tests.
bench: broker-jars
	$(BIN)/python -m tests.bench $(BENCH_OPTIONS)

# 15 minutes of a steady feed while the worker is SIGKILLed and the broker restarted at random;
# then alerts expected/seen/lost/unknown, the worker's memory over time and the longest stall
# (tests/soak.py; SOAK_OPTIONS="--minutes 5 --seed 2"). Then the SIGKILL-restart tests, ten
# times in a row each (`CRISISMON_KAFKA_VERSION` picks the broker's version). Not part of `make test`.
soak: broker-jars
	$(BIN)/python -m tests.soak $(SOAK_OPTIONS)
	CRISISMON_RESTARTS=10 $(BIN)/python -m pytest -s -p no:cacheprovider tests/test_pipeline.py -k restarted_at_once
	passed=0; for run in 1 2 3 4 5 6 7 8 9 10; do \
	  $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_pipeline.py -k killed_worker_restarts \
	  && passed=$$((passed + 1)); done; echo "the SIGKILL test: $$passed of 10 passed"; test $$passed = 10

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
