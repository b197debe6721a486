"""`GET /images/json` filters, with Docker's matching rules and messages."""
from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidParameter
from .reference import Reference

LIST_FILTERS = {"before", "since", "until", "dangling", "label", "reference"}
PRUNE_FILTERS = {"until", "label", "label!", "dangling"}


def normalize(raw: Any, accepted: set[str]) -> dict[str, list[str]]:
    """Docker sends `{"key": {"value": true}}` (current clients) or
    `{"key": ["value"]}` (old ones); either becomes {key: [values]}."""
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid filters: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, val in raw.items():
        if key not in accepted:
            raise InvalidParameter(f"invalid filter '{key}'")
        if isinstance(val, dict):
            out[key] = [k for k, on in val.items() if on]
        elif isinstance(val, list):
            out[key] = [str(v) for v in val]
        elif isinstance(val, str):
            out[key] = [val]
        else:
            raise InvalidParameter(f"invalid filter '{key}'")
    return out


def bool_filter(filters: dict[str, list[str]], key: str) -> bool | None:
    """Docker's GetBoolOrDefault: exactly one of true/1 or false/0."""
    if key not in filters:
        return None
    vals = {v.lower() for v in filters[key]}
    is_true = bool(vals & {"true", "1"})
    is_false = bool(vals & {"false", "0"})
    if is_true == is_false:
        raise InvalidParameter(f"invalid filter '{key}={','.join(filters[key])}'")
    return is_true


def labels_match(wanted: list[str], labels: dict[str, str] | None) -> bool:
    """Every `key` or `key=value` in wanted holds (MatchKVList)."""
    labels = labels or {}
    for w in wanted:
        k, eq, v = w.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    return True


def _go_glob(pattern: str) -> re.Pattern:
    """Go's path.Match pattern as a regex: `*` and `?` stop at `/`."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= n:
                raise InvalidParameter("syntax error in pattern")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1:end]
            neg = body.startswith("^")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append("[" + ("^" if neg else "") + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("^" + "".join(out) + "$")
    except re.error:
        raise InvalidParameter("syntax error in pattern") from None


def reference_match(pattern: str, ref: Reference) -> bool:
    """reference.FamiliarMatch: against `bb:latest`, then against `bb`."""
    rx = _go_glob(pattern)
    return bool(rx.match(ref.familiar()) or rx.match(ref.familiar_name))
