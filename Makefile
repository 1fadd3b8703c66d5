# The two commands of the README: `make run` and `make test`. Both set up first (idempotent).
PY := .venv/bin/python
ARGS ?=

.PHONY: run test setup setup-test screenshots bench doctor snapshot demo install-docs

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

demo: setup
	.venv/bin/obs-tui demo $(ARGS)

doctor: setup
	.venv/bin/obs-tui doctor

snapshot: setup
	.venv/bin/obs-tui snapshot

# The man page and the bash and zsh completions, generated from the argument parser, where a
# Debian system looks for them: man obs-tui, and completion in new shells.
PREFIX ?= /usr/local
install-docs: setup
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	$(PY) -m obs_tui.cli_help man > $(DESTDIR)$(PREFIX)/share/man/man1/obs-tui.1
	$(PY) -m obs_tui.cli_help bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/obs-tui
	$(PY) -m obs_tui.cli_help zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_obs-tui
