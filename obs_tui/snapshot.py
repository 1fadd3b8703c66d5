"""The Frame as the `snapshot --json` document (schema 1 in docs/snapshot.md; add fields, never rename)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from obs_tui.model import Frame

# Frame fields held as tuples of (key, value) pairs to stay immutable; JSON shows them as objects.
MAPPING_FIELDS = {
    "zones",
    "subzones",
    "burn_rates",
    "status_classes",
    "error_ratios",
    "lost_reasons",
    "zone_joules",
    "undecoded",
    "undecoded_total",
    "grpc_status",
}


# dataclass -> its (field name, held as pairs) in order; the recorder turns every frame into
# a document, so the fields of a class are looked up once, not for each of its rows
_FIELDS: dict[type, tuple[tuple[str, bool], ...] | None] = {}


def _fields(cls: type) -> tuple[tuple[str, bool], ...] | None:
    names = _FIELDS.get(cls, ())
    if names == ():
        names = (
            tuple((f.name, f.name in MAPPING_FIELDS) for f in dataclasses.fields(cls))
            if dataclasses.is_dataclass(cls)
            else None
        )
        _FIELDS[cls] = names
    return names


def plain(value: Any) -> Any:
    """A model value as the document holds it: dataclasses as objects, pairs as objects,
    floats to six decimals."""
    cls = type(value)
    if cls is float:
        return round(value, 6)
    if cls is int or cls is str or cls is bool or value is None:
        return value
    names = _fields(cls)
    if names is not None:
        out = {}
        for name, pairs in names:
            item = getattr(value, name)
            out[name] = {k: plain(v) for k, v in item} if pairs else plain(item)
        return out
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def _when(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def frame_to_json(frame: Frame) -> dict[str, Any]:
    return {
        "schema": frame.schema,
        "host": frame.host,
        "taken_at": _when(frame.taken_at),
        "duration_s": round(frame.duration_s, 3),
        # state: ok | degraded | off; stale_since: RFC3339 of the first failure since the last
        # good answer (null while fine)
        "capabilities": {
            name: {
                "ok": cap.ok,
                "reason": cap.reason,
                "state": cap.state,
                "stale_since": _when(cap.stale_since),
            }
            for name, cap in frame.capabilities
        },
        "sources": {
            s.name: {
                "mode": s.mode,
                "stale": s.stale,
                "reason": s.reason,
                "stale_since": _when(s.stale_since),
                "join": s.join,
            }
            for s in frame.sources
        },
        "red": plain(frame.red),
        "power": plain(frame.power),
        "carbon": plain(frame.carbon),
        "slo": plain(frame.slo),
        "instance": frame.instance,  # read-only mode: the Prometheus instance shown ("" for all)
        "instances": list(frame.instances),
        # what a replayed frame needs to be drawn as it was (history stores these documents)
        "interval_s": frame.interval_s,
        "uptime_s": round(frame.uptime_s, 3),
        "processes": plain(frame.processes),
    }
