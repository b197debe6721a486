"""`docker import --change` / `docker commit --change`: Dockerfile lines
applied to an image config.

Only the instructions moby accepts there (builder/dockerfile
validCommitCommands). Variable substitution follows the Dockerfile rules
for the instructions that have it (ENV, LABEL, WORKDIR, USER, EXPOSE,
VOLUME, STOPSIGNAL), using the environment from before the instruction.
"""
from __future__ import annotations

import copy
import json
import posixpath
import re
import signal

from ..errors import InvalidParameter
from .times import parse_duration_ns

DEFAULT_SHELL = ["/bin/sh", "-c"]
_ALLOWED = {"cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild",
            "stopsignal", "user", "volume", "workdir"}
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def apply_changes(changes: list[str], config: dict | None = None) -> dict:
    """Return a new config (Docker's capitalised keys) with `changes` applied."""
    cfg = copy.deepcopy(config) if config else {}
    state = {"cmd_set": False}
    for change in changes:
        for line in change.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keyword, *rest_ = line.split(None, 1)
            kw = keyword.lower()
            if kw not in _ALLOWED:
                raise InvalidParameter(f"{kw} is not a valid change command")
            rest = rest_[0].strip() if rest_ else ""
            if not rest:
                raise InvalidParameter(f"{keyword.upper()} requires at least one argument")
            _APPLY[kw](cfg, rest, state)
    return cfg


# ---------------------------------------------------------------- words

def _env_map(cfg: dict) -> dict[str, str]:
    out = {}
    for kv in cfg.get("Env") or []:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


def _expand_var(s: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """At s[i] == '$': return (replacement, index after the variable)."""
    if i + 1 < len(s) and s[i + 1] == "{":
        end = s.find("}", i + 2)
        if end < 0:
            raise InvalidParameter(f"missing '}}' in {s!r}")
        body = s[i + 2:end]
        m = _VAR_NAME.match(body)
        if not m:
            raise InvalidParameter(f"bad substitution in {s!r}")
        name, mod = m.group(0), body[m.end():]
        val = env.get(name)
        if mod.startswith(":-"):
            val = val if val else mod[2:]
        elif mod.startswith(":+"):
            val = mod[2:] if val else ""
        elif mod:
            raise InvalidParameter(f"unsupported modifier ({mod}) in substitution: {s!r}")
        return val or "", end + 1
    m = _VAR_NAME.match(s, i + 1)
    if not m:
        return "$", i + 1
    return env.get(m.group(0), ""), m.end()


def _words(s: str, env: dict[str, str] | None, split: bool = True) -> list[str]:
    """Shell-like words: quotes removed, backslash escapes, $VAR expanded
    (not inside single quotes; not at all when env is None)."""
    words: list[str] = []
    cur: list[str] = []
    started = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace() and split:
            if started:
                words.append("".join(cur))
                cur, started = [], False
            i += 1
            continue
        started = True
        if c == "\\" and i + 1 < n:
            cur.append(s[i + 1])
            i += 2
        elif c == "'":
            end = s.find("'", i + 1)
            if end < 0:
                raise InvalidParameter(f"unexpected end of statement while looking for matching single-quote: {s!r}")
            cur.append(s[i + 1:end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise InvalidParameter(f"unexpected end of statement while looking for matching double-quote: {s!r}")
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and s[i + 1] in '"\\$':
                    cur.append(s[i + 1])
                    i += 2
                elif c == "$" and env is not None:
                    val, i = _expand_var(s, i, env)
                    cur.append(val)
                else:
                    cur.append(c)
                    i += 1
        elif c == "$" and env is not None:
            val, i = _expand_var(s, i, env)
            cur.append(val)
        else:
            cur.append(c)
            i += 1
    if started:
        words.append("".join(cur))
    return words


def _word(s: str, env: dict[str, str]) -> str:
    """One word, inner whitespace kept (legacy `ENV KEY some value`)."""
    w = _words(s, env, split=False)
    return w[0] if w else ""


def _json_list(rest: str) -> list[str] | None:
    """The exec form `["a", "b"]`, or None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        val = json.loads(rest)
    except ValueError:
        return None
    if isinstance(val, list) and all(isinstance(x, str) for x in val):
        return val
    return None


def _command(cfg: dict, rest: str) -> list[str]:
    exec_form = _json_list(rest)
    if exec_form is not None:
        return exec_form
    return list(cfg.get("Shell") or DEFAULT_SHELL) + [rest]


def _pairs(keyword: str, rest: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` or the legacy `K some value`."""
    first = rest.split(None, 1)
    if "=" not in first[0]:
        if len(first) < 2:
            raise InvalidParameter(f"{keyword} must have two arguments")
        return [(_word(first[0], env), _word(first[1], env))]
    out = []
    for w in _words(rest, env):
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise InvalidParameter(f"{keyword} names can not be blank" if not k
                                   else f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        out.append((k, v))
    return out


# ---------------------------------------------------------------- instructions

def _cmd(cfg, rest, state):
    cfg["Cmd"] = _command(cfg, rest)
    state["cmd_set"] = True


def _entrypoint(cfg, rest, state):
    cfg["Entrypoint"] = _command(cfg, rest)
    if not state["cmd_set"]:
        cfg["Cmd"] = None     # as in a Dockerfile: a new ENTRYPOINT drops an inherited CMD


def _env(cfg, rest, state):
    env = _env_map(cfg)
    entries = list(cfg.get("Env") or [])
    for k, v in _pairs("ENV", rest, env):
        entries = [e for e in entries if e.partition("=")[0] != k] + [f"{k}={v}"]
    cfg["Env"] = entries


def _label(cfg, rest, state):
    labels = dict(cfg.get("Labels") or {})
    for k, v in _pairs("LABEL", rest, _env_map(cfg)):
        labels[k] = v
    cfg["Labels"] = labels


def _workdir(cfg, rest, state):
    wd = _word(rest, _env_map(cfg))
    if not wd.startswith("/"):
        wd = posixpath.join("/", cfg.get("WorkingDir") or "", wd)
    cfg["WorkingDir"] = posixpath.normpath(wd)


def _user(cfg, rest, state):
    cfg["User"] = _word(rest, _env_map(cfg))


def _expose(cfg, rest, state):
    ports = dict(cfg.get("ExposedPorts") or {})
    for spec in _words(rest, _env_map(cfg)):
        for p in _port_specs(spec):
            ports[p] = {}
    cfg["ExposedPorts"] = ports


def _port_specs(spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    lo, dash, hi = port.partition("-")
    try:
        start, end = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {port}") from None
    if not (0 < start <= end <= 65535):
        raise InvalidParameter(f"invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def _volume(cfg, rest, state):
    paths = _json_list(rest)
    if paths is None:
        paths = _words(rest, _env_map(cfg))
    vols = dict(cfg.get("Volumes") or {})
    for p in paths:
        if not p.strip():
            raise InvalidParameter("VOLUME specified can not be an empty string")
        vols[p] = {}
    cfg["Volumes"] = vols


def _stopsignal(cfg, rest, state):
    sig = _word(rest, _env_map(cfg))
    if not _valid_signal(sig):
        raise InvalidParameter(f"Invalid signal: {sig}")
    cfg["StopSignal"] = sig


def _valid_signal(sig: str) -> bool:
    if sig.isdigit():
        return 0 < int(sig) <= 64
    name = sig.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?", name):
        return True
    return name in signal.Signals.__members__


def _onbuild(cfg, rest, state):
    trigger = rest.split(None, 1)[0].upper()
    if trigger in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
    cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]


_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval"}


def _healthcheck(cfg, rest, state):
    words = rest.split(None, 1)
    if words[0].upper() == "NONE":
        if len(words) > 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        cfg["Healthcheck"] = {"Test": ["NONE"]}
        return
    hc: dict = {}
    while words and words[0].startswith("--"):
        flag, _, value = words[0][2:].partition("=")
        try:
            if flag in _HEALTH_FLAGS:
                hc[_HEALTH_FLAGS[flag]] = parse_duration_ns(value)
            elif flag == "retries":
                hc["Retries"] = int(value)
            else:
                raise InvalidParameter(f"unknown flag: --{flag}")
        except ValueError as e:
            raise InvalidParameter(f"HEALTHCHECK --{flag}: {e}") from None
        words = words[1].split(None, 1) if len(words) > 1 else []
    if not words or words[0].upper() != "CMD" or len(words) < 2:
        raise InvalidParameter("Unknown type in HEALTHCHECK (try CMD)" if words and words[0].upper() != "CMD"
                               else "Missing command after HEALTHCHECK CMD")
    exec_form = _json_list(words[1])
    hc["Test"] = ["CMD"] + exec_form if exec_form is not None else ["CMD-SHELL", words[1]]
    cfg["Healthcheck"] = {"Test": hc.pop("Test"), **hc}


_APPLY = {"cmd": _cmd, "entrypoint": _entrypoint, "env": _env, "label": _label,
          "workdir": _workdir, "user": _user, "expose": _expose, "volume": _volume,
          "stopsignal": _stopsignal, "onbuild": _onbuild, "healthcheck": _healthcheck}
