#!/usr/bin/env python3
"""Generate src/dockyard/api/api_schema.json from Docker's Engine API spec.

    python3 scripts/gen-api-schema.py [SPEC.yaml] [OUT.json]

The daemon type-checks request bodies against this file (api/validate.py)
and never reads the spec itself. Defaults: ../shared/reference/
docker-engine-api-v1.50.yaml and the vendored src/dockyard/api/api_schema.json.
Needs PyYAML (`pip install pyyaml`, or schemathesis, which brings it).

What is kept of a schema is what Go's encoding/json checks when moby
decodes a body: types (with integer formats, for the Go type in the
message), properties, items and map values (`additionalProperties` when
it is a schema). Descriptions, examples, enums, required lists and
`x-` keys are dropped (Go's decoder checks none of them; moby's handlers
check what they care about with their own words). `allOf` is flattened.
Fields where moby's Go type is more lenient than the spec (strslice.StrSlice
takes a string or an array) are widened here, in OVERRIDES.
"""
from __future__ import annotations

import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "..", "shared", "reference", "docker-engine-api-v1.50.yaml")
OUT = os.path.join(ROOT, "src", "dockyard", "api", "api_schema.json")

# the spec's schema names -> moby's Go type names (used in the error wording)
GO_NAMES = {"ContainerConfig": "Config", "NetworkConnectRequest": "NetworkConnect",
            "NetworkDisconnectRequest": "NetworkDisconnect", "NetworkCreateRequest": "CreateRequest",
            "VolumeCreateOptions": "CreateOptions", "ExecStartConfig": "ExecStartCheck"}
# request bodies without a named schema: (method, path) -> Go type name
BODY_GO_NAMES = {("post", "/containers/create"): "CreateRequest",
                 ("post", "/containers/{id}/update"): "UpdateConfig"}
# moby's strslice.StrSlice: a JSON string or an array of strings
STRSLICE = {"type": ["string", "array"], "items": {"type": "string"}, "go": "strslice.StrSlice"}
OVERRIDES = {("ContainerConfig", "Cmd"): STRSLICE, ("ContainerConfig", "Entrypoint"): STRSLICE,
             ("ContainerConfig", "Shell"): STRSLICE}
# moby up to Docker 26 (dockerd 20.10 among them) decoded the create body into
# a wrapper that embeds a second HostConfig, so HostConfig's fields are read at
# the top level too (with a top-level `Cpuset`): the API < 1.18 shape, which
# old clients still send. daemon/create.py applies them as that wrapper did.
LEGACY_EMBEDS = {("post", "/containers/create"): ("HostConfig", {"Cpuset": {"type": "string"}})}
# bodies moby decodes that the spec does not describe (checkpoints are experimental there)
EXTRA_BODIES = {"POST /containers/{id}/checkpoints": {
    "go": "CheckpointCreateOptions", "type": "object",
    "properties": {"CheckpointID": {"type": "string"}, "CheckpointDir": {"type": "string"},
                   "Exit": {"type": "boolean"}}}}
# not served by dockyard, and left out of the fuzz run as the issue says
EXCLUDED_PREFIXES = ("/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs", "/plugins",
                     "/session", "/build", "/distribution")


def trim(s: dict, defname: str | None = None) -> dict:
    if "$ref" in s:
        return {"ref": s["$ref"].rsplit("/", 1)[1]}
    if "allOf" in s and len(s["allOf"]) == 1:      # `allOf: [$ref]`: the spec's way to describe a use
        return trim(s["allOf"][0], defname)
    if "allOf" in s:
        out: dict = {"type": "object", "properties": {}}
        for part in s["allOf"]:
            if "$ref" in part:
                name = part["$ref"].rsplit("/", 1)[1]
                out.setdefault("bases", []).append(name)
            else:
                out["properties"].update(trim(part, defname).get("properties", {}))
        return out
    out = {}
    t = s.get("type")
    if t is None and "properties" in s:
        t = "object"
    if t is not None:
        out["type"] = t
    if s.get("format") in ("int64", "int32", "uint64", "uint32", "uint16", "uint8", "int8", "int16"):
        out["format"] = s["format"]
    if "title" in s:
        out["go"] = GO_NAMES.get(s["title"], s["title"])
    if isinstance(s.get("properties"), dict):
        props = {}
        for k, v in s["properties"].items():
            props[k] = OVERRIDES.get((defname, k)) or trim(v)
        out["properties"] = props
    if isinstance(s.get("items"), dict):
        out["items"] = trim(s["items"])
    if isinstance(s.get("additionalProperties"), dict) and s["additionalProperties"]:
        out["values"] = trim(s["additionalProperties"])
    return out


def main() -> None:
    spec_path = sys.argv[1] if len(sys.argv) > 1 else SPEC
    out_path = sys.argv[2] if len(sys.argv) > 2 else OUT
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    defs = {}
    for name, s in spec["definitions"].items():
        t = trim(s, name)
        t["go"] = GO_NAMES.get(name, name)
        defs[name] = t
    bodies = {}
    for path, ops in spec["paths"].items():
        if path.startswith(EXCLUDED_PREFIXES):
            continue
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            for prm in op.get("parameters", []):
                if prm.get("in") != "body" or prm.get("schema", {}).get("format") == "binary":
                    continue
                s = trim(prm["schema"])
                if s.get("type") == "string":
                    continue        # a raw body (images/create's inputImage)
                if (method, path) in BODY_GO_NAMES:
                    s["go"] = BODY_GO_NAMES[(method, path)]
                if (method, path) in LEGACY_EMBEDS:
                    embedded, fields = LEGACY_EMBEDS[(method, path)]
                    s["bases"] = [embedded] + s.get("bases", [])    # the body's own fields win
                    s["properties"] = {**fields, **s.get("properties", {})}
                bodies[f"{method.upper()} {path}"] = s
    bodies.update(EXTRA_BODIES)
    # keep only the definitions the bodies reach
    keep: set[str] = set()

    def walk(s: dict) -> None:
        for name in [s.get("ref")] + s.get("bases", []):
            if name and name not in keep:
                keep.add(name)
                walk(defs[name])
        for v in (s.get("properties") or {}).values():
            walk(v)
        for k in ("items", "values"):
            if k in s:
                walk(s[k])
    for s in bodies.values():
        walk(s)
    doc = {"source": f"{os.path.basename(spec_path)} (scripts/gen-api-schema.py)",
           "bodies": dict(sorted(bodies.items())),
           "definitions": {k: defs[k] for k in sorted(keep)}}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
