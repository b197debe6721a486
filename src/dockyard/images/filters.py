"""`GET /images/json` and `POST /images/prune` filters, with Docker's
matching rules and messages. Parsing, label matching and bool values are
dockyard.filters' (one for every route); the reference glob is the images'
own."""
from __future__ import annotations

import re

from .. import filters as _flt
from ..errors import InvalidParameter
from .reference import Reference

LIST_FILTERS = {"before", "since", "until", "dangling", "label", "reference"}
PRUNE_FILTERS = {"until", "label", "label!", "dangling"}

normalize = _flt.normalize           # (raw, accepted) -> {key: [values]}, moby's 400s
bool_filter = _flt.bool_value        # GetBoolOrDefault
labels_match = _flt.match_kv_list    # (wanted, labels): MatchKVList


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
