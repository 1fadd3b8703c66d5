"""A TIME as people type it: `14:05`, `14:05:12`, `-10m`, `-1h30m`, `now`, or ISO 8601 with or
without a zone (without one, local time). Pure: the clock is passed in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_AGO = re.compile(r"^-((?:\d+(?:\.\d+)?[smhd])+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMS = "14:05, 14:05:12, -10m, -1h30m, now or ISO 8601 (2026-11-29T14:05:00Z)"


def parse_time(text: str, now: float) -> float:
    """Epoch seconds for `text`; ValueError naming the accepted forms otherwise. A clock time
    is today's, or yesterday's when today's is still to come."""
    text = text.strip()
    if text == "now":
        return now
    ago = _AGO.match(text)
    if ago:
        return now - sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(ago.group(1)))
    clock = _CLOCK.match(text)
    if clock:
        hour, minute, second = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"not a time of day: {text!r}: use {FORMS}")
        today = datetime.fromtimestamp(now).replace(hour=hour, minute=minute, second=second, microsecond=0)
        at = today.timestamp()
        return (today - timedelta(days=1)).timestamp() if at > now + 1 else at
    try:
        return datetime.fromisoformat(text).timestamp()  # naive: local time, as typed
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: use {FORMS}") from None
