# The two commands of the README: `make run` and `make test`. Both set up first (idempotent).
PY := .venv/bin/python
ARGS ?=
# The tests that need neither root, nor probes, nor a Prometheus, nor minutes (tests/conftest.py).
FAST := not root and not ebpf and not prometheus and not slow and not exclusive

.PHONY: run test test-fast check setup setup-test screenshots bench doctor snapshot demo install-agent \
	install-docs graph

run: setup
	.venv/bin/obs-tui $(ARGS)

# Workers for the parallel phases: most tests wait on servers, probes and ticks, not on a core.
JOBS ?= 3

# The whole suite in two phases: the modules in parallel (each module on one worker, so its
# tests share their servers; tests/conftest.py groups the modules that count lost events), then the tests marked `exclusive` (they measure CPU shares or
# wall-clock bounds) alone. Both run; the target fails if either failed (5: nothing selected).
# Each phase lists its slowest tests: where the suite's time budget goes.
test: setup-test
	@rc=0; \
	$(PY) -m pytest -q -n $(JOBS) --dist loadgroup --durations=15 -m "not exclusive" $(ARGS) || [ $$? -eq 5 ] || rc=1; \
	$(PY) -m pytest -q --durations=10 -m exclusive $(ARGS) || [ $$? -eq 5 ] || rc=1; \
	exit $$rc

# The inner loop: pure maths and the UI, under a minute.
test-fast: setup-test
	$(PY) -m pytest -q -n $(JOBS) --dist load -m "$(FAST)" $(ARGS)

# Lint, format and types. Every step runs, and the target fails if any failed.
check: setup-test
	@rc=0; \
	.venv/bin/ruff check . || rc=1; \
	.venv/bin/ruff format --check . || rc=1; \
	.venv/bin/mypy || rc=1; \
	exit $$rc

# The import graph by layer (ARCHITECTURE.md); fails if a lower layer imports a higher one.
graph:
	python3 scripts/module_graph.py

# The agent as a systemd service (systemd/obs-tui-agent.service), run from /usr/local/bin/obs-tui,
# which `make setup` links to this checkout's venv. ProtectHome hides /home and /root from the
# service: the checkout must live elsewhere (e.g. /opt/obs-tui).
install-agent: setup
	@case "$$(readlink -f /usr/local/bin/obs-tui)" in /home/*|/root/*) \
	  echo "install-agent: /usr/local/bin/obs-tui is under /home or /root, which the service cannot see (ProtectHome); set up a checkout elsewhere, e.g. /opt/obs-tui" >&2; exit 1;; esac
	install -D -m 0644 systemd/obs-tui-agent.service /etc/systemd/system/obs-tui-agent.service
	@state=$$(systemctl is-system-running 2>/dev/null); \
	if [ "$$state" = running ] || [ "$$state" = degraded ]; then \
	  systemctl daemon-reload && systemctl enable --now obs-tui-agent.service && \
	  systemctl --no-pager status obs-tui-agent.service; \
	else \
	  echo "install-agent: unit installed; systemd is not running here ($${state:-no systemctl}), so it was not started"; \
	fi

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
