#!/usr/bin/env bash
# Idempotent set-up on Debian 12 as root: apt packages, then the venv with obs-tui installed.
# Usage: scripts/setup.sh [run|test|bench]   (each level adds the packages it needs)
# Quick when already done: apt runs only for missing packages; pip only when pyproject changed.
set -euo pipefail
level=${1:-run}
cd "$(dirname "$0")/.."

packages=(python3 python3-venv python3-bpfcc python3-yaml)
# The kernel-headers fallback: with no headers for the running kernel, obs-tui assembles the
# distro's nearest linux-headers tree (see obs_tui/bcc_setup.py).
if [ ! -d "/lib/modules/$(uname -r)/build/include" ]; then
  packages+=(linux-headers-amd64)
fi
if [ "$level" = test ] || [ "$level" = bench ]; then
  packages+=(prometheus nginx wrk tmux curl openssl strace zsh nghttp2-client)
  # systemd-analyze verifies the agent's unit where systemd does not run (tests/test_agent_unit.py)
  command -v systemd-analyze >/dev/null || packages+=(systemd)
  command -v node >/dev/null || packages+=(nodejs)
  # Go's net/http TLS servers for the crypto/tls uprobe tests, built by the tests themselves
  packages+=(golang-go)
fi
if [ "$level" = bench ]; then
  packages+=(htop glances atop)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # nginx and prometheus must not start system services on install: tests start their own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# Debian's python3 with system site-packages: bcc (python3-bpfcc) lives in dist-packages and
# PyPI's "bcc" is an unrelated package.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# One stamp per install flavour; an install with the test extras also serves `run`.
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
with_tests=.venv/.obs-tui-installed-test
plain=.venv/.obs-tui-installed-run
if [ "$level" = run ]; then
  if ! fresh "$plain" && ! fresh "$with_tests"; then
    .venv/bin/pip install -q --disable-pip-version-check -e .
    touch "$plain"
  fi
elif ! fresh "$with_tests"; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  touch "$with_tests"
fi

# `sudo obs-tui`, as the README types it: root's PATH (sudo's secure_path) has /usr/local/bin,
# not this venv. A symlink to the venv's entry point, which runs the venv's python; the
# checkout set up last owns it.
if [ "$(id -u)" = 0 ] && [ -d /usr/local/bin ]; then
  target="$PWD/.venv/bin/obs-tui"
  if [ "$(readlink /usr/local/bin/obs-tui 2>/dev/null)" != "$target" ]; then
    if [ -e /usr/local/bin/obs-tui ] && [ ! -L /usr/local/bin/obs-tui ]; then
      echo "setup: /usr/local/bin/obs-tui exists and is not a symlink: left as it is" >&2
    else
      ln -sfn "$target" /usr/local/bin/obs-tui
      echo "setup: /usr/local/bin/obs-tui -> $target"
    fi
  fi
fi

# `man obs-tui` and shell completion for the command just linked, generated from its own
# argument parser (what `make install-docs` writes); again only when missing or older than the
# parser that makes them.
if [ "$(id -u)" = 0 ] && [ -d /usr/local/share ]; then
  man_dir=/usr/local/share/man/man1 bash_dir=/usr/local/share/bash-completion/completions
  zsh_dir=/usr/local/share/zsh/site-functions
  if [ ! -f "$man_dir/obs-tui.1" ] || [ obs_tui/cli.py -nt "$man_dir/obs-tui.1" ] \
      || [ obs_tui/cli_help.py -nt "$man_dir/obs-tui.1" ]; then
    mkdir -p "$man_dir" "$bash_dir" "$zsh_dir"
    .venv/bin/python -m obs_tui.cli_help man > "$man_dir/obs-tui.1"
    .venv/bin/python -m obs_tui.cli_help bash > "$bash_dir/obs-tui"
    .venv/bin/python -m obs_tui.cli_help zsh > "$zsh_dir/_obs-tui"
    echo "setup: man page and completions in /usr/local/share"
  fi
fi
