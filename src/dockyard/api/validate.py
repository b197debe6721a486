"""One type check for every JSON request body, as moby's Go decoder does it.

moby decodes a body into Go structs (encoding/json): an unknown field is
ignored, `null` leaves a field at its zero value, and a known field of the
wrong JSON type is a 400 `invalid JSON: json: cannot unmarshal array into Go
struct field HealthConfig.Healthcheck.Retries of type int`. This module
checks a decoded body against the body schemas of Docker's Engine API spec
(v1.50), vendored as api_schema.json by scripts/gen-api-schema.py, so no
body shape reaches a handler or service that would raise on it.

Our message keeps Go's words after a prefix naming the top-level field
(`invalid Healthcheck: json: cannot unmarshal …`) where moby says
`invalid JSON: `, which stays for a body that is not an object at all.

Enums, required fields and value ranges are not checked here (Go's decoder
does not; the services check what moby checks, in moby's words), except
that integers must fit Go's integer types.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from ..errors import InvalidParameter

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api_schema.json")

_INT_RANGES = {"int64": (-(1 << 63), (1 << 63) - 1), "int32": (-(1 << 31), (1 << 31) - 1),
               "uint64": (0, (1 << 64) - 1), "uint32": (0, (1 << 32) - 1), "uint16": (0, (1 << 16) - 1),
               "uint8": (0, 255), "int16": (-(1 << 15), (1 << 15) - 1), "int8": (-128, 127),
               "int": (-(1 << 63), (1 << 63) - 1)}


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(SCHEMA_FILE) as f:
        return json.load(f)


def body_schema(method: str, pattern: str) -> dict | None:
    """The spec's schema for a route's JSON body (`pattern` as the route
    table writes it: `/containers/{id}/exec`, `/images/{name:path}`)."""
    return _schema()["bodies"].get(f"{method} {_spec_path(pattern)}")


def _spec_path(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        j = pattern.find("{", i)
        if j < 0:
            out.append(pattern[i:])
            break
        k = pattern.index("}", j)
        out.append(pattern[i:j] + "{" + pattern[j + 1:k].split(":")[0] + "}")
        i = k + 1
    return "".join(out)


def check_params(path: dict[str, str], query: dict[str, list[str]]) -> None:
    """Path and query values: text that may become a file name, an argument
    or a reference, so never with a NUL byte (no name, path, argument or
    reference Docker takes has one; Python's os and subprocess raise on it)."""
    for name, value in path.items():
        if "\x00" in value:
            raise InvalidParameter(f"invalid {name} {value!r}: contains a NUL byte")
    for name, values in query.items():
        if "\x00" in name or any("\x00" in v for v in values):
            raise InvalidParameter(f"invalid query parameter {name!r}: contains a NUL byte")


def check_body(value: Any, schema: dict) -> None:
    """Raise InvalidParameter (400) in Go's words when `value` (a decoded
    body) has a known field of the wrong type."""
    _check(value, schema, _go_name(schema) or "", [], top=True)


def _resolve(s: dict) -> dict:
    while "ref" in s:
        s = _schema()["definitions"][s["ref"]]
    if "bases" in s:       # allOf: the bases' properties, then this schema's
        props: dict = {}
        for name in s["bases"]:
            props.update(_resolve(_schema()["definitions"][name]).get("properties") or {})
        props.update(s.get("properties") or {})
        s = {**{k: v for k, v in s.items() if k != "bases"}, "properties": props}
    return s


def _go_name(s: dict) -> str | None:
    if "go" in s:
        return s["go"]
    if "ref" in s:
        return _schema()["definitions"][s["ref"]].get("go") or s["ref"]
    return None


def _go_type(s: dict) -> str:
    """How Go's error names a field's type (`int64`, `[]string`, `map[string]string`)."""
    name = _go_name(s)
    if name and ("ref" in s or "properties" in s or s.get("go")):
        return name
    s = _resolve(s)
    t = s.get("type")
    if isinstance(t, list):
        t = t[0]
    if t == "integer":
        return s.get("format") or "int"
    if t == "number":
        return "float64"
    if t == "boolean":
        return "bool"
    if t == "array":
        return "[]" + (_go_type(s["items"]) if "items" in s else "interface {}")
    if t == "object":
        if "properties" in s:
            return s.get("go") or "struct"
        return "map[string]" + (_go_type(s["values"]) if "values" in s else "interface {}")
    return t or "interface {}"


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return f"number {json.dumps(v)}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _fail(value: Any, s: dict, struct: str, fields: list[str], top: bool = False) -> None:
    kind = _json_kind(value)
    if kind.startswith("number ") and _resolve(s).get("type") not in ("integer", "number"):
        kind = "number"   # Go names the literal only for a number that does not fit a number type
    if top or not fields:
        raise InvalidParameter(f"invalid JSON: json: cannot unmarshal {kind} into Go value of type {_go_type(s)}")
    where = f"Go struct field {struct}.{'.'.join(fields)} of type {_go_type(s)}"
    raise InvalidParameter(f"invalid {fields[0]}: json: cannot unmarshal {kind} into {where}")


def _fits(value: Any, t: str, s: dict) -> bool:
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        lo, hi = _INT_RANGES.get(s.get("format") or "int")
        return lo <= value <= hi
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return True


def _check(value: Any, schema: dict, struct: str, fields: list[str], top: bool = False) -> None:
    if value is None:
        return                      # Go: null leaves the zero value
    s = _resolve(schema)
    t = s.get("type")
    kinds = t if isinstance(t, list) else [t] if t else []
    if kinds and not any(_fits(value, k, s) for k in kinds):
        _fail(value, schema, struct, fields, top)
    if isinstance(value, dict):
        props = s.get("properties")
        if props is not None:
            inner = _go_name(schema) or s.get("go") or struct
            for k, v in value.items():
                if k in props:
                    _check(v, props[k], inner, fields + [k])
        elif "values" in s:
            for v in value.values():
                _check(v, s["values"], struct, fields)
    elif isinstance(value, list) and "items" in s:
        for v in value:
            _check(v, s["items"], struct, fields)
