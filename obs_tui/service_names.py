"""What a server is called: the one rule the console, `snapshot --json` and /metrics share.

In order:
1. the process's own `OTEL_SERVICE_NAME` (its environment, as OpenTelemetry SDKs read it);
2. the first `[[red.services]]` rule of the config whose matchers all match the process
   (its executable, a pattern searched in its command line, a port it listens on);
3. its executable's name with its lowest listening port, `python3:8080` (just the name when
   it listens on nothing we know of).

Two unrelated Python servers on one host are then two services, never one `python3`.
Pure: the caller reads /proc (sources/service_identity.py) and hands the facts in.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What a name may hold: printable, no quotes or control characters, and short (a label value
# on every series; 128 is OpenTelemetry's attribute length default for names in practice).
MAX_NAME = 128
_BAD_NAME = re.compile(r'[\x00-\x1f\x7f"\\]')


class RuleError(ValueError):
    """A [[red.services]] rule that cannot work: one line naming the rule and the key."""


@dataclass(frozen=True)
class ServiceRule:
    """A [[red.services]] table: `name` for the processes every given matcher matches."""

    name: str
    exe: str = ""  # glob on the executable's path or its base name: "python3*", "/srv/*/bin/*"
    cmdline: re.Pattern[str] | None = None  # searched anywhere in the command line
    port: int = 0  # a port the process listens on

    def matches(self, exe: str, cmdline: str, ports: Sequence[int]) -> bool:
        if self.exe and not (
            fnmatch.fnmatchcase(exe, self.exe) or fnmatch.fnmatchcase(exe.rsplit("/", 1)[-1], self.exe)
        ):
            return False
        if self.cmdline is not None and not self.cmdline.search(cmdline):
            return False
        return not self.port or self.port in ports


def clean_name(text: str) -> str:
    """A name as it may stand in a label value and on a terminal row; "" when unusable."""
    text = text.strip()
    if not text or len(text) > MAX_NAME or _BAD_NAME.search(text) or not text.isprintable():
        return ""
    return text


def rules_from_config(
    tables: Iterable[Mapping[str, Any]], where: str = "red.services"
) -> tuple[ServiceRule, ...]:
    """The config's [[red.services]] tables as rules; RuleError (one line) for a bad one."""
    rules = []
    for i, table in enumerate(tables):
        at = f"{where}[{i}]"
        name = clean_name(str(table.get("name", "")))
        if not name:
            raise RuleError(
                f"key '{at}.name' must be a printable name of 1 to {MAX_NAME} "
                f"characters without quotes, got {table.get('name', '')!r}"
            )
        exe, pattern, port = table.get("exe", ""), table.get("cmdline", ""), table.get("port", 0)
        if not (exe or pattern or port):
            raise RuleError(f"{at} ({name!r}) matches every process: give exe, cmdline or port")
        if not 0 <= port <= 65535:
            raise RuleError(f"key '{at}.port' must be a TCP port (1-65535), got {port}")
        try:
            compiled = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise RuleError(f"key '{at}.cmdline' is not a valid regular expression: {exc}") from None
        rules.append(ServiceRule(name, exe, compiled, port))
    return tuple(rules)


def service_name(
    comm: str,
    ports: Sequence[int],
    env_name: str = "",
    exe: str = "",
    cmdline: str = "",
    rules: Sequence[ServiceRule] = (),
) -> str:
    """The service a server process belongs to (see the module's docstring for the order).
    `exe` is the executable's path ("" when unknown: then rules match its command line's
    first word), `comm` the kernel's name for the process, `ports` its listening ports."""
    named = clean_name(env_name)
    if named:
        return named
    if rules:
        exe_seen = exe or (cmdline.split(" ", 1)[0] if cmdline else "")
        for rule in rules:
            if rule.matches(exe_seen, cmdline, ports):
                return rule.name
    base = comm or (exe.rsplit("/", 1)[-1] if exe else "") or "?"
    return f"{base}:{min(ports)}" if ports else base
