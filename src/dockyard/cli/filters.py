"""`--filter key=value` flags → the Engine API's `filters` query parameter."""
from __future__ import annotations

from .flags import UsageError


def parse_filters(items: list[str]) -> dict[str, dict[str, bool]]:
    """["status=exited", "label=a=b"] → {"status": {"exited": true}, "label": {"a=b": true}}."""
    filters: dict[str, dict[str, bool]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"invalid argument \"{item}\" for \"-f, --filter\" flag: "
                             f"bad format of filter (expected name=value)")
        filters.setdefault(key.strip().lower(), {})[value] = True
    return filters


def filters_param(items: list[str], extra: dict[str, dict[str, bool]] | None = None) -> str | None:
    """The JSON for `?filters=`, or None when there are none."""
    filters = parse_filters(items)
    for key, values in (extra or {}).items():
        filters.setdefault(key, {}).update(values)
    if not filters:
        return None
    import json
    return json.dumps(filters, separators=(",", ":"))
