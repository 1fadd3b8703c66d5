"""Request paths to low-cardinality routes, as Beyla's low-cardinality mode does.

1. A user pattern from `[red] routes` wins: "/users/{id}" matches any path of the same depth
   whose literal segments are equal ("{name}" and "*" match any one segment).
2. Otherwise numeric, UUID and hex segments become "{id}".
3. Then, level by level from the root, a prefix with more than `max_children` distinct next
   segments has them all collapse to "*" (and their sub-trees merge under it).

Everything is computed from the whole set of paths a service has served, so a path maps to
the same route however often it was seen; the set is bounded by the probe's stats map.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from obs_tui.probe_constants import PATHS_MAX
from obs_tui.text import printable

ID = "{id}"
ANY = "*"

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*")


def is_id(segment: str) -> bool:
    if segment.isdecimal() and segment.isascii():
        return True
    if _UUID.fullmatch(segment):
        return True
    # Hex ids (hashes, object ids): long enough not to be a word like "cafe" or "added",
    # and holding a digit, or so long no word would be.
    if _HEX.fullmatch(segment) and len(segment) >= 8:
        return any(ch.isdigit() for ch in segment) or len(segment) >= 16
    return False


def segments(path: str) -> list[str]:
    """The non-empty segments of a path; an absolute-form target loses its scheme and host."""
    path = _SCHEME.sub("", path).split("?", 1)[0].split("#", 1)[0]  # the probe cuts these too
    return [s for s in path.split("/") if s]


def _clean(segment: str) -> str:
    # Paths are client-controlled bytes: keep them printable for the terminal (U+FFFD, not
    # "?": a route must normalise to itself, and "?" would start a query string).
    return printable(segment)


def parse_pattern(pattern: str) -> tuple[str, ...]:
    return tuple("*" if (s.startswith("{") and s.endswith("}")) or s == "*" else s for s in segments(pattern))


def _matches(parsed: tuple[str, ...], segs: Sequence[str]) -> bool:
    return len(parsed) == len(segs) and all(p == "*" or p == s for p, s in zip(parsed, segs))


def normalise(
    paths: Iterable[str], patterns: Sequence[str] = (), max_children: int = 10, truncated: Iterable[str] = ()
) -> dict[str, str]:
    """Map every path to its route. Paths in `truncated` were cut by the probe: their last
    segment is partial, so it becomes "*"."""
    patterns = tuple(patterns)
    cut = set(truncated)
    routes: dict[str, str] = {}
    pending: dict[str, tuple[str, ...]] = {}  # path -> normalised segments, for the cap
    for path in set(paths):
        one = _route_alone(path, patterns, path in cut)
        if isinstance(one, str):
            routes[path] = one
        else:
            pending[path] = one
    for path, norm in _cap(pending, max(1, max_children)).items():
        routes[path] = "/" + "/".join(norm)
    return routes


@functools.lru_cache(maxsize=1)
def _parsed(patterns: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    return [(p, parse_pattern(p)) for p in patterns]


@functools.lru_cache(maxsize=PATHS_MAX)  # the probe's paths table: every live path stays
def _route_alone(path: str, patterns: tuple[str, ...], cut: bool) -> str | tuple[str, ...]:
    """What a path maps to on its own: its route (a string) when a pattern or its shape
    decides it, else its normalised segments, which the cardinality cap may still collapse.
    Memoised: under traffic the set of paths changes every tick but most paths stay."""
    if not path.startswith("/") and "://" not in path:
        return ANY  # "*" (OPTIONS *) or garbage: never a cardinality source
    segs = segments(path)
    match = next((text for text, pat in _parsed(patterns) if _matches(pat, segs)), None)
    if match is not None:
        return match
    norm = [ID if is_id(s) else _clean(s) for s in segs]
    if cut and norm:
        norm[-1] = ANY
    return tuple(norm)


def _cap(pending: dict[str, tuple[str, ...]], max_children: int) -> dict[str, list[str]]:
    """Collapse, level by level, the children of any prefix that has too many."""
    current = {path: list(norm) for path, norm in pending.items()}
    depth = 0
    while True:
        children: dict[tuple[str, ...], set[str]] = {}
        for norm in current.values():
            if len(norm) > depth:
                children.setdefault(tuple(norm[:depth]), set()).add(norm[depth])
        if not children:
            return current
        crowded = {prefix for prefix, kids in children.items() if len(kids) > max_children}
        for norm in current.values():
            if len(norm) > depth and tuple(norm[:depth]) in crowded:
                norm[depth] = ANY
        depth += 1
