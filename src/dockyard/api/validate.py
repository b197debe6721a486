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

Field names are matched as Go matches them: the exact name first, else
case-insensitively (`detachKeys`, `CPURealtimeRuntime`), at every depth
(HostConfig, RestartPolicy, EndpointSettings, IPAM, ...), and the body is
handed on with each field under its canonical name; the keys of maps
(Labels, Options, DriverOpts, ExposedPorts, PortBindings, Volumes, ...)
are data and stay as sent.

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


def check_body(value: Any, schema: dict) -> Any:
    """The body as moby's Go decoder reads it: raise InvalidParameter (400)
    in Go's words when `value` (a decoded body) has a known field of the
    wrong type; return it with every struct field under its canonical name,
    so handlers and services read one spelling."""
    return _decode(value, _node(schema), _go_name(schema) or "", None, True)


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


def _fits(value: Any, t: str, fmt: str) -> bool:
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        lo, hi = _INT_RANGES[fmt]
        return lo <= value <= hi
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return True


class _Node:
    """A body schema compiled once for decoding: its JSON types, its struct
    fields by exact and by folded name, its array items and map values."""
    __slots__ = ("schema", "kinds", "fmt", "go", "fields", "folded", "items", "values", "scalar")


_NODES: dict[int, _Node] = {}
_SCALARS = frozenset(("string", "boolean", "integer", "number"))


def _node(schema: dict) -> _Node:
    n = _NODES.get(id(schema))
    if n is not None:
        return n
    n = _NODES[id(schema)] = _Node()      # before its children: a schema may reach itself
    n.schema = schema                      # held, so its id is never reused
    s = _resolve(schema)
    t = s.get("type")
    n.kinds = tuple(t) if isinstance(t, list) else (t,) if t else ()
    n.scalar = bool(n.kinds) and all(k in _SCALARS for k in n.kinds)
    n.fmt = s.get("format") or "int"
    n.go = _go_name(schema) or s.get("go")
    props = s.get("properties")
    n.fields = None if props is None else {k: _node(v) for k, v in props.items()}
    n.folded = None if props is None else {}
    for k in props or ():
        n.folded.setdefault(_fold(k), k)
    n.items = _node(s["items"]) if "items" in s else None
    n.values = _node(s["values"]) if "values" in s else None
    return n


def _fold(key: str) -> str:
    """Go's encoding/json folded name (`foldName`): ASCII letters upper-cased,
    any other rune as unicode.ToUpper(unicode.ToLower(r)), simple mappings
    only (so `ſ` matches `s` and the Kelvin sign `k`, but `ß` never `ss`)."""
    if key.isascii():
        return key.upper()
    return "".join(map(_fold_rune, key))


def _fold_rune(c: str) -> str:
    low = c.lower()
    if len(low) != 1:
        low = c
    up = low.upper()
    return up if len(up) == 1 else low


def _path(fields: tuple | None) -> list[str]:
    out: list[str] = []
    while fields is not None:
        fields, name = fields
        out.append(name)
    return out[::-1]


def _decode(value: Any, n: _Node, struct: str, fields: tuple | None, top: bool = False) -> Any:
    """`value` checked against `n`, with struct fields renamed to their
    canonical names; `fields` is the path of field names so far, as a
    linked (parent, name) pair, made into a list only for an error."""
    if value is None:
        return None                 # Go: null leaves the zero value
    if n.kinds and not any(_fits(value, k, n.fmt) for k in n.kinds):
        _fail(value, n.schema, struct, _path(fields), top)
    if isinstance(value, dict):
        if n.fields is not None:
            return _decode_struct(value, n, n.go or struct, fields)
        if n.values is not None:    # a map: its keys are data, kept as sent
            return {k: _decode(v, n.values, struct, fields) for k, v in value.items()}
    elif isinstance(value, list) and n.items is not None:
        return [_decode(v, n.items, struct, fields) for v in value]
    return value


def _decode_struct(value: dict, n: _Node, struct: str, fields: tuple | None) -> dict:
    """Go matches a key to a field by its exact name, else case-insensitively
    (the folded name); a key that is no field is kept as sent (the services
    drop what they do not know, as Go's decoder does)."""
    out: dict = {}
    for k, v in value.items():
        f = n.fields.get(k)
        if f is None:
            name = n.folded.get(_fold(k))
            if name is None:
                out[k] = v
                continue
            k, f = name, n.fields[name]
        v = _decode(v, f, struct, (fields, k))
        out[k] = _merge(out[k], v, f) if k in out else v
    return out


def _merge(old: Any, new: Any, n: _Node | None) -> Any:
    """A field given twice (`Tty` and `tty`): Go decodes the second into
    what the first left. null empties a pointer, slice or map and leaves a
    scalar alone; an object goes into the struct already there field by
    field, and into a map already there entry by entry; the rest replaces."""
    if n is None:
        return new
    if new is None:
        return old if n.scalar else None
    if isinstance(old, dict) and isinstance(new, dict):
        if n.fields is None:
            return {**old, **new}
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge(out[k], v, n.fields.get(k)) if k in out else v
        return out
    return new
