# The two commands of the README: `make run` and `make test`. Both set up first (idempotent).
PY := .venv/bin/python
ARGS ?=

.PHONY: run test setup setup-test screenshots bench doctor snapshot

run: setup
	.venv/bin/obs-tui $(ARGS)

test: setup-test
	$(PY) -m pytest -q $(ARGS)

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

screenshots: setup-test
	$(PY) -m obs_tui.tui.screenshots screenshots

bench: setup
	@scripts/setup.sh bench
	$(PY) bench/ui_cost.py
	$(PY) bench/red_overhead.py
	$(PY) bench/slo_refresh.py

doctor: setup
	.venv/bin/obs-tui doctor

snapshot: setup
	.venv/bin/obs-tui snapshot --json
