"""`GET /events` filters, matched as moby's events/filter.go does.

`container`, `image`, `network`, `volume`, `daemon` match the actor's ID
by prefix or its name exactly; `event` matches the action (by prefix for
`health_status`, `exec_create`, `exec_start`, whose actions carry a suffix);
`label` matches `key` or `key=value` in the attributes.
"""
from __future__ import annotations

from .. import filters

VALID = {"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope",
         "secret", "service", "type", "volume"}
_FUZZY_ACTIONS = {"health_status", "exec_create", "exec_start"}


def parse(text: str | None) -> dict[str, list[str]]:
    """The `filters` query string, checked (moby's 400s, `invalid filter 'k'`)."""
    return filters.parse(text, VALID)


def normalize(raw) -> dict[str, list[str]]:
    """Decoded `filters` JSON (key → list or key → {value: true}), checked."""
    return filters.normalize(raw, VALID)


def _fuzzy(wanted: list[str], value: str) -> bool:
    """moby's FuzzyMatch: equal, or `value` starts with a wanted string."""
    return bool(value) and any(value.startswith(w) for w in wanted)


def _strip_tag(name: str) -> str:
    if name.startswith("sha256:") or ":" not in name.rsplit("/", 1)[-1]:
        return name
    return name.rsplit(":", 1)[0]


def _image(wanted: list[str], ev: dict) -> bool:
    actor = ev["Actor"]
    name = actor["Attributes"].get("name" if ev["Type"] == "image" else "image", "")
    return bool({actor["ID"], name, _strip_tag(actor["ID"]), _strip_tag(name)} & set(wanted))


def matches(ev: dict, f: dict[str, list[str]]) -> bool:
    """Every given filter must match (moby's Filter.Include); a filter that
    names an actor (container=X) therefore excludes other actors' events."""
    if not f:
        return True
    actor = ev["Actor"]
    if "event" in f:
        fuzzy = any(w in _FUZZY_ACTIONS for w in f["event"])
        if not (_fuzzy(f["event"], ev["Action"]) if fuzzy else ev["Action"] in f["event"]):
            return False
    if "type" in f and ev["Type"] not in f["type"]:
        return False
    if "scope" in f and ev.get("scope") not in f["scope"]:
        return False
    for key in ("daemon", "container", "network", "volume", "plugin", "node", "service", "secret", "config"):
        if key in f and not (_fuzzy(f[key], actor["ID"]) or _fuzzy(f[key], actor["Attributes"].get("name", ""))):
            return False
    if "image" in f and not _image(f["image"], ev):
        return False
    return filters.labels_match(f, actor["Attributes"])
