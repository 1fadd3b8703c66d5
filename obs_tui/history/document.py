"""A `snapshot --json` document back into a Frame, for replay.

The reverse of snapshot.frame_to_json, written against the model's own field types so it
follows the model as it grows: a field the document lacks (history written before the field
existed) takes its default, or the empty value of its type; a field the model no longer has
(history written by a later obs-tui) is ignored. Schema 1 only grows, so both directions
keep old history readable. What the engine reads across a Frame's sections (service totals,
processes with their power, the exported series) is derived again by the same analysis
(analysis/derived.py), so a replayed frame shows what the live one showed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from obs_tui.analysis.derived import derive, red_totals
from obs_tui.model import Capability, Frame, SourceStatus
from obs_tui.snapshot import MAPPING_FIELDS, plain

_EMPTY = {int: 0, float: 0.0, str: "", bool: False}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _empty(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple:
        return ()
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp):
        return None
    return _EMPTY.get(tp)


def _converter(tp: Any, mapping: bool = False) -> Callable[[Any], Any]:
    """A function from a JSON value to `tp`, built once per type (replay reads hundreds of
    rows a frame, so the type is not inspected again for each value)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = _converter([a for a in typing.get_args(tp) if a is not type(None)][0], mapping)
        return lambda raw: None if raw is None else inner(raw)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _converter(args[0])
            if mapping:  # held as ((key, value), ...) in the model, an object in JSON
                value = _converter(typing.get_args(args[0])[1])

                def pairs(raw: Any) -> tuple:
                    if isinstance(raw, dict):
                        return tuple((str(k), value(v)) for k, v in raw.items())
                    return tuple(item(x) for x in raw) if isinstance(raw, list) else ()

                return pairs
            return lambda raw: tuple(item(x) for x in raw) if isinstance(raw, list) else ()
        items = [_converter(a) for a in args]
        return lambda raw: tuple(c(x) for c, x in zip(items, raw)) if isinstance(raw, list) else ()
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        build = _builder(tp)
        return lambda raw: build(raw) if isinstance(raw, dict) else None
    if tp is float:
        return lambda raw: (
            float(raw) if isinstance(raw, (int, float)) and raw is not True and raw is not False else 0.0
        )
    if tp is int:
        return lambda raw: (
            int(raw) if isinstance(raw, (int, float)) and raw is not True and raw is not False else 0
        )
    if tp in _EMPTY:
        empty = _EMPTY[tp]
        return lambda raw: raw if isinstance(raw, tp) else empty
    return lambda raw: raw


@cache
def _builder(cls: type) -> Callable[[dict], Any]:
    hints = _hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields.append(
            (f.name, _converter(hints[f.name], f.name in MAPPING_FIELDS), required, _empty(hints[f.name]))
        )

    def build(raw: dict) -> Any:
        kwargs = {}
        for name, convert, required, empty in fields:
            if name in raw:
                kwargs[name] = convert(raw[name])
            elif required:
                kwargs[name] = empty
        return cls(**kwargs)

    return build


@cache
def _field(name: str) -> Callable[[Any], Any]:
    return _converter(_hints(Frame)[name])


def red_totals_of(red: dict) -> dict:
    """red.totals for a RED section given as a document (the services of a window of recorded
    frames, history/window.py), by the analysis that totals a live Frame's."""
    section = _field("red")(red)
    return plain(red_totals(section.services))


def frame_from_json(doc: dict, taken_at: float | None = None) -> Frame:
    """The Frame a document describes. `taken_at`: the exact time (the document's own is to
    the second)."""
    if taken_at is None:
        taken_at = datetime.fromisoformat(doc["taken_at"]).timestamp()
    caps = tuple(
        sorted(
            (name, Capability(bool(c.get("ok")), str(c.get("reason", ""))))
            for name, c in (doc.get("capabilities") or {}).items()
        )
    )
    sources = tuple(
        SourceStatus(
            name,
            str(s.get("mode", "off")),
            str(s.get("reason", "")),
            bool(s.get("stale", False)),
            bool(s.get("join", False)),
        )
        for name, s in (doc.get("sources") or {}).items()
    )
    frame = Frame(
        host=str(doc.get("host", "")),
        taken_at=float(taken_at),
        duration_s=float(doc.get("duration_s") or 0.0),
        uptime_s=float(doc.get("uptime_s") or 0.0),
        interval_s=float(doc.get("interval_s") or 1.0),
        capabilities=caps,
        sources=sources,
        processes=_field("processes")(doc.get("processes") or []),
        red=_field("red")(doc.get("red")),
        power=_field("power")(doc.get("power")),
        carbon=_field("carbon")(doc.get("carbon")),
        slo=_field("slo")(doc.get("slo") or []),
        instance=str(doc.get("instance", "")),
        instances=tuple(str(i) for i in doc.get("instances") or ()),
        schema=int(doc.get("schema", 1)),
    )
    return derive(frame)
