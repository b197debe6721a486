"""The `filters` query parameter, read as moby's api/types/filters does,
for every route that takes one (containers, images, networks, volumes,
events, the prune routes).

A filter set is `{key: [values]}`. Clients send `{"key": {"value": true}}`
(API >= 1.22) or the old `{"key": ["value"]}`; anything else is moby's 400
`invalid filter` (a JSON syntax error, `1`, `[…]`, `true`, a string value,
the two forms mixed). A route that validates keys answers an unknown one
with `invalid filter 'key'`.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from .errors import InvalidParameter

Filters = dict[str, list[str]]


def parse(text: str | None, accepted: Iterable[str] | None = None) -> Filters:
    """The `filters` query string -> {key: [values]}; with `accepted`, any
    other key is a 400 `invalid filter 'key'`."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidParameter("invalid filter") from None
    return normalize(raw, accepted)


def normalize(raw: Any, accepted: Iterable[str] | None = None) -> Filters:
    """Decoded `filters` JSON (or a filter set already) -> {key: [values]},
    as moby's FromJSON: all values sets (`{"v": true}`), or all lists of
    strings (the legacy form); `null` stands for no values."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid filter")
    as_sets = all(v is None or (isinstance(v, dict) and all(b is None or isinstance(b, bool) for b in v.values()))
                  for v in raw.values())
    as_lists = all(v is None or (isinstance(v, list) and all(x is None or isinstance(x, str) for x in v))
                   for v in raw.values())
    if not (as_sets or as_lists):
        raise InvalidParameter("invalid filter")
    out: Filters = {}
    for key, val in raw.items():
        values = list(val) if val is not None else []      # a set's keys, whatever their bool (moby's Get)
        out[str(key)] = list(dict.fromkeys("" if v is None else v for v in values))
    if accepted is not None:
        validate(out, accepted)
    return out


def validate(f: Filters, accepted: Iterable[str]) -> None:
    """moby's Args.Validate: a key outside `accepted` is `invalid filter 'key'`."""
    allowed = set(accepted)
    for key in f:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")


def match_kv_list(wanted: Iterable[str], labels: dict[str, str] | None) -> bool:
    """moby's MatchKVList: every `key` or `key=value` in `wanted` is among
    `labels` (no wanted values: true; wanted but no labels: false)."""
    wanted = list(wanted)
    if not wanted:
        return True
    labels = labels or {}
    if not labels:
        return False
    for want in wanted:
        key, eq, value = want.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def labels_match(f: Filters, labels: dict[str, str] | None) -> bool:
    """The `label` filter against an object's labels (MatchKVList)."""
    return match_kv_list(f.get("label", ()), labels)


def prune_labels_match(f: Filters, labels: dict[str, str] | None) -> bool:
    """The prune routes' `label` and `label!` filters (moby's matchLabels):
    every `label` holds, and not every `label!` does."""
    if not labels_match(f, labels):
        return False
    return not ("label!" in f and match_kv_list(f["label!"], labels))


def bool_value(f: Filters, key: str) -> bool | None:
    """moby's GetBoolOrDefault: None without the key, else exactly one of
    true/1 or false/0 (`invalid filter 'key=v1,v2'` otherwise)."""
    if key not in f:
        return None
    if not f[key]:
        raise InvalidParameter(f"invalid filter '{key}'")
    vals = {v.lower() for v in f[key]}
    is_true, is_false = bool(vals & {"true", "1"}), bool(vals & {"false", "0"})
    if is_true == is_false:
        raise InvalidParameter(f"invalid filter '{key}={','.join(f[key])}'")
    return is_true


def until_limits(f: Filters) -> list[int]:
    """The prune routes' `until` values in unix ns (unix time, RFC 3339 or a
    Go duration back from now); a bad one is Docker's 400 `invalid until filter: X`."""
    from .timestamps import get_timestamp_ns
    out = []
    for v in f.get("until", ()):
        try:
            out.append(get_timestamp_ns(v))
        except ValueError:
            raise InvalidParameter(f"invalid until filter: {v}") from None
    return out
