"""daemon.json: dockerd's configuration file, with dockerd's keys and rules.

`load(path)` reads and checks the file; `merge(flags, file)` joins it with
the flags given on the command line. dockerd's rules, kept:
  - an unknown key fails the start: "the following directives don't match
    any configuration option: k";
  - a key given both as a flag and in the file fails the start: "the
    following directives are specified both as a flag and in the
    configuration file: k: (from flag: x, from file: y)";
  - every message is prefixed "unable to configure the Docker daemon with
    file PATH: ".
Better than dockerd: a syntax error names its line and column (Go's
encoding/json gives neither), and a value of the wrong type names the key
and the type it wants.

`RELOADABLE` are the keys SIGHUP re-reads (dockerd's reloadable set, those
dockyard has); the others need a restart, as on dockerd.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable


class ConfigError(Exception):
    pass


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_str_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _is_obj(v: Any) -> bool:
    return isinstance(v, dict)


def _is_obj_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


@dataclass(frozen=True)
class Key:
    dest: str                       # the argparse dest the flag fills
    check: Callable[[Any], bool]
    want: str                       # the type, as the error names it
    flag: str = ""                  # the flag's spelling when it is not --<key>


# dockerd's daemon.json keys that dockyard has (moby's daemon/config Config json tags).
KEYS: dict[str, Key] = {
    "hosts": Key("host", _is_str_list, "an array of strings", "-H/--host"),
    "data-root": Key("data_root", _is_str, "a string"),
    "exec-root": Key("exec_root", _is_str, "a string"),
    "pidfile": Key("pidfile", _is_str, "a string"),
    "group": Key("group", _is_str, "a string"),
    "default-runtime": Key("default_runtime", _is_str, "a string"),
    "runtimes": Key("runtimes", _is_obj, "an object"),
    "log-level": Key("log_level", _is_str, "a string"),
    "debug": Key("debug", _is_bool, "a boolean"),
    "log-driver": Key("log_driver", _is_str, "a string"),
    "log-opts": Key("log_opt", _is_str_map, "an object of strings", "--log-opt"),
    "insecure-registries": Key("insecure_registry", _is_str_list, "an array of strings", "--insecure-registry"),
    "registry-mirrors": Key("registry_mirror", _is_str_list, "an array of strings", "--registry-mirror"),
    "bridge": Key("bridge", _is_str, "a string"),
    "bip": Key("bip", _is_str, "a string"),
    "default-address-pools": Key("default_address_pool", _is_obj_list, "an array of objects",
                                 "--default-address-pool"),
    "ipv6": Key("ipv6", _is_bool, "a boolean"),
    "fixed-cidr-v6": Key("fixed_cidr_v6", _is_str, "a string"),
    "live-restore": Key("live_restore", _is_bool, "a boolean"),
    "labels": Key("label", _is_str_list, "an array of strings", "--label"),
    "cgroup-parent": Key("cgroup_parent", _is_str, "a string"),
    "userns-remap": Key("userns_remap", _is_str, "a string"),
    "tls": Key("tls", _is_bool, "a boolean"),
    "tlsverify": Key("tlsverify", _is_bool, "a boolean"),
    "tlscacert": Key("tlscacert", _is_str, "a string"),
    "tlscert": Key("tlscert", _is_str, "a string"),
    "tlskey": Key("tlskey", _is_str, "a string"),
    "default-ulimits": Key("default_ulimit", _is_obj, "an object", "--default-ulimit"),
    "max-concurrent-downloads": Key("max_concurrent_downloads", _is_int, "an integer"),
    "max-concurrent-uploads": Key("max_concurrent_uploads", _is_int, "an integer"),
    "features": Key("features", _is_obj, "an object"),
    "criu-path": Key("criu_path", _is_str, "a string"),
    # dockyard's own: the CRI's pulls, containerd's registry.mirrors ({"registry.k8s.io": ["http://..."]})
    "cri-registry-mirrors": Key("cri_registry_mirror", _is_obj, "an object", "--cri-registry-mirror"),
    "cni-conf-template": Key("cni_conf_template", _is_str, "a string"),     # containerd's cni.conf_template
}

# What SIGHUP reloads (moby's Daemon.Reload, the keys dockyard has).
RELOADABLE = ("debug", "log-level", "labels", "insecure-registries", "registry-mirrors",
              "max-concurrent-downloads", "max-concurrent-uploads", "default-ulimits",
              "live-restore", "features", "default-runtime", "runtimes")


def _prefix(path: str) -> str:
    return f"unable to configure the Docker daemon with file {path}: "


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse(text: str, path: str) -> dict[str, Any]:
    """The file's keys, checked (unknown keys and wrong types refused)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        line, col = _line_col(text, e.pos)
        raise ConfigError(_prefix(path) + f"syntax error at line {line}, column {col}: {e.msg}") from None
    if not isinstance(doc, dict):
        raise ConfigError(_prefix(path) + "json: cannot unmarshal " + type(doc).__name__ +
                          " into Go value of type map[string]interface {}")
    unknown = sorted(k for k in doc if k not in KEYS)
    if unknown:
        raise ConfigError(_prefix(path) + "the following directives don't match any configuration option: "
                          + ", ".join(unknown))
    for k, v in doc.items():
        key = KEYS[k]
        if not key.check(v):
            raise ConfigError(_prefix(path) + f"invalid value for {k!r}: want {key.want}, "
                              f"got {json.dumps(v)}")
    return doc


def load(path: str, required: bool) -> dict[str, Any]:
    """The file at `path`; {} when it is missing and was not asked for by
    name (dockerd: the default file is optional, a named one is not)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if required:
            raise ConfigError(_prefix(path) + f"open {path}: no such file or directory") from None
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(_prefix(path) + str(e)) from None
    return parse(text, path)


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(str(x) for x in v) + "]"
    return str(v)


def conflicts(explicit: dict[str, Any], doc: dict[str, Any], path: str) -> None:
    """dockerd refuses a setting given both ways (by dest: flag values)."""
    both = []
    for k, v in sorted(doc.items()):
        dest = KEYS[k].dest
        if dest in explicit:
            both.append(f"{k}: (from flag: {_show(explicit[dest])}, from file: {_show(v)})")
    if both:
        raise ConfigError(_prefix(path) + "the following directives are specified both as a flag and in "
                          "the configuration file: " + ", ".join(both))


def ulimits(spec: dict[str, Any]) -> dict[str, dict]:
    """default-ulimits' {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}} checked."""
    out = {}
    for name, u in spec.items():
        if not isinstance(u, dict) or not _is_int(u.get("Soft", 0)) or not _is_int(u.get("Hard", 0)):
            raise ConfigError(f"invalid default-ulimits entry {name!r}: want {{\"Name\", \"Soft\", \"Hard\"}}")
        out[name] = {"Name": u.get("Name") or name, "Soft": u.get("Soft", 0), "Hard": u.get("Hard", 0)}
    return out


def parse_ulimit_flag(text: str) -> tuple[str, dict]:
    """--default-ulimit nofile=1024:2048 (Soft[:Hard]), as docker's units.ParseUlimit."""
    from .units import parse_ulimit
    try:
        u = parse_ulimit(text)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return u["Name"], {"Name": u["Name"], "Soft": u["Soft"], "Hard": u["Hard"]}
