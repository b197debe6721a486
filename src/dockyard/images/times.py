"""Times as image configs carry them (Go's RFC3339Nano `created`), in unix
nanoseconds. The parsing and formatting live in dockyard.timestamps and
dockyard.durations (one of each for the whole engine); these are the names
the images code uses."""
from __future__ import annotations

import time

from ..durations import parse_ns as parse_duration_ns  # noqa: F401  (Go's time.ParseDuration, in ns)
from ..timestamps import ZERO_TIME, format_ns, parse_ns  # noqa: F401
from ..timestamps import get_timestamp_ns as parse_filter_time  # noqa: F401  (since/until filter values)


def now_ns() -> int:
    return time.time_ns()
