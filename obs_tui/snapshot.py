"""The Frame as the `snapshot --json` document (schema 1 in DESIGN.md; add fields, never rename)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

from obs_tui.model import Frame


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def frame_to_json(frame: Frame) -> dict[str, Any]:
    power = None
    if frame.power is not None:
        power = _plain(frame.power)
        power["zones"] = dict(frame.power.zones)
    slo = []
    for status in frame.slo:
        item = _plain(status)
        item["burn_rates"] = dict(status.burn_rates)
        slo.append(item)
    return {
        "schema": frame.schema,
        "host": frame.host,
        "taken_at": datetime.fromtimestamp(frame.taken_at, timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(frame.duration_s, 3),
        "capabilities": {name: {"ok": cap.ok, "reason": cap.reason} for name, cap in frame.capabilities},
        "sources": {s.name: {"mode": s.mode, "stale": s.stale, "reason": s.reason} for s in frame.sources},
        "red": _plain(frame.red) if frame.red is not None else None,
        "power": power,
        "carbon": _plain(frame.carbon) if frame.carbon is not None else None,
        "slo": slo,
    }
