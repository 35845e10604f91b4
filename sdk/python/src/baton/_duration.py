"""Durations as Baton writes them ("500ms", "30s", "5m", "1h30m", "7d") turned into milliseconds."""

from __future__ import annotations

import datetime
import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def to_millis(value: "str | int | float | datetime.timedelta | None") -> int:
    """Milliseconds for a duration: a string with units, a timedelta, or seconds as a number.

    None and zero mean "none" (0). A malformed string raises ValueError naming it.
    """
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        millis = value.total_seconds() * 1000
    elif isinstance(value, bool):
        raise TypeError(f"a duration cannot be a boolean: {value!r}")
    elif isinstance(value, (int, float)):
        millis = float(value) * 1000
    elif isinstance(value, str):
        millis = _parse(value)
    else:
        raise TypeError(f"a duration is a string like '5m', a number of seconds or a timedelta, not {value!r}")
    if millis < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return int(round(millis))


def _parse(text: str) -> float:
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("empty duration")
    position = 0
    total = 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise ValueError(f"not a duration: {text!r} (write e.g. 500ms, 30s, 5m, 1h30m, 7d)")
    return total
