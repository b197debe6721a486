"""What each instruction does to the image config, and what the classic
builder writes for it (moby's builder/dockerfile dispatchers.go and
internals.go): no I/O here, so every rule can be tested on its own.

`State` is moby's dispatchState: the run config so far (a container
Config with all of Docker's keys), the image it belongs to, the build
args in scope. `apply_metadata` handles the instructions that only change
the config; RUN and COPY/ADD get their command lines and cache configs
from here and their filesystem work from service.py.
"""
from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Mapping

from ...errors import InvalidParameter
from .dockerfile import Instruction, parse_healthcheck, split_arg
from .shell import ShellLex, go_quote

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby's builtinAllowedBuildArgs: usable without an ARG, never warned about,
# left out of RUN's history unless the Dockerfile declares them.
BUILTIN_ARGS = frozenset(("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                          "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"))

# container.Config's keys in Go's field order; the ones Go omits when empty
_CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
                "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
                "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
                "StopTimeout", "Shell")
_OMIT_EMPTY = frozenset(("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress",
                         "StopSignal", "StopTimeout", "Shell"))
_ZERO = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
         "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
         "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def full_config(cfg: Mapping | None) -> dict:
    """An image's `config` as dockerd serialises a container.Config: every
    key it always writes, in its order; the omitempty ones only when set."""
    cfg = cfg or {}
    out = {}
    for k in _CONFIG_KEYS:
        v = cfg.get(k)
        if k in _OMIT_EMPTY:
            if v not in (None, "", False, 0, [], {}):
                out[k] = copy.deepcopy(v)
        else:
            out[k] = copy.deepcopy(v) if v is not None else _ZERO[k]
    return out


class BuildArgs:
    """moby's BuildArgs: --build-arg values, the ARGs declared in scope (and
    the meta ARGs before the first FROM), and which were referenced."""

    def __init__(self, from_options: Mapping[str, str | None]):
        self.options = dict(from_options)
        self.allowed: dict[str, str | None] = {}
        self.meta: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def clone(self) -> "BuildArgs":
        b = BuildArgs(self.options)
        b.allowed, b.meta, b.referenced = dict(self.allowed), dict(self.meta), set(self.referenced)
        return b

    def add_arg(self, key: str, value: str | None) -> None:
        self.allowed[key] = value
        self.referenced.add(key)

    def add_meta(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def _get(self, key: str, mapping: dict) -> tuple[str, bool]:
        default = mapping.get(key)
        v = self.options.get(key)
        if key in self.options and v is not None:
            return v, True
        if default is None:
            mv = self.meta.get(key)
            if mv is not None:
                return mv, True
            return "", False
        return default, key in mapping

    def _all(self, mapping: dict) -> dict[str, str]:
        out = {}
        for key in list(mapping) + sorted(BUILTIN_ARGS):
            v, ok = self._get(key, mapping)
            if ok:
                out[key] = v
        return out

    def all_allowed(self) -> dict[str, str]:
        return self._all(self.allowed)

    def all_meta(self) -> dict[str, str]:
        return self._all(self.meta)

    def filter_allowed(self, env: list[str] | None) -> list[str]:
        """The allowed args as `k=v`, except those ENV already sets."""
        have = {e.split("=", 1)[0] for e in env or []}
        return [f"{k}={v}" for k, v in self.all_allowed().items() if k not in have]

    def referenced_or_not_builtin(self, key: str) -> bool:
        return key in self.allowed or key not in BUILTIN_ARGS

    def unused(self, referenced: set[str]) -> list[str]:
        return sorted(k for k in self.options if k not in BUILTIN_ARGS and k not in referenced)


@dataclass
class State:
    config: dict = field(default_factory=dict)
    image_id: str = ""               # "" before FROM, and for FROM scratch until a step commits
    from_scratch: bool = False
    maintainer: str = ""
    cmd_set: bool = False
    stage_name: str = ""
    args: BuildArgs = field(default_factory=lambda: BuildArgs({}))

    def begin(self, image_id: str, image_config: Mapping | None, scratch: bool = False) -> None:
        """moby's beginStage: the base image's config, PATH defaulted, stdin off."""
        self.image_id = image_id
        self.from_scratch = scratch
        self.config = full_config(image_config)
        env = self.config.get("Env") or []
        if not any(e.split("=", 1)[0] == "PATH" for e in env):
            self.config["Env"] = list(env) + ["PATH=" + DEFAULT_PATH]
        self.config["OpenStdin"] = False
        self.config["StdinOnce"] = False

    def env_for_expansion(self) -> dict[str, str]:
        env = list(self.config.get("Env") or [])
        env += self.args.filter_allowed(env)
        out: dict[str, str] = {}
        for e in env:
            k, _, v = e.partition("=")
            out[k] = v
        return out

    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


# ---------------------------------------------------------------- Go formatting

def go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg, u = ns < 0, abs(ns)
    if u < 1_000_000_000:
        for unit, div in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < div * 1000:
                s = _frac(u, div) + unit
                return ("-" if neg else "") + s
    h, rem = divmod(u, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s = _frac(rem, 10**9) + "s"
    out = (f"{h}h{m}m" if h else f"{m}m" if m else "") + s
    return ("-" if neg else "") + out


def _frac(v: int, div: int) -> str:
    whole, part = divmod(v, div)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(div)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def go_quote_rune(n: int) -> str:
    """%q of an int: strconv.QuoteRune."""
    ch = chr(n)
    if ch in ("'", "\\"):
        return "'\\" + ch + "'"
    q = go_quote(ch)[1:-1]
    if q == '\\"':
        q = '"'
    return f"'{q}'"


def go_q_slice(items: list[str] | None) -> str:
    """%q of a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(s) for s in items or []) + "]"


def go_v_slice(items) -> str:
    """%v of a []string: [a b]."""
    return "[" + " ".join(items or []) + "]"


def healthcheck_comment(hc: Mapping) -> str:
    """%q of a *HealthConfig, as moby's HEALTHCHECK history shows it."""
    durs = " ".join(go_quote(go_duration(int(hc.get(k) or 0)))
                    for k in ("Interval", "Timeout", "StartPeriod", "StartInterval"))
    return f"&{{{go_q_slice(hc.get('Test'))} {durs} {go_quote_rune(int(hc.get('Retries') or 0))}}}"


# ---------------------------------------------------------------- expansion

def expand(lex: ShellLex, ins: Instruction, env: Mapping[str, str]) -> Instruction:
    """moby's SupportsSingleWordExpansion: the words that instruction
    expands, each with ProcessWord (quotes removed, variables in)."""
    w = lambda s: lex.process_word(s, env)     # noqa: E731
    c = ins.cmd
    out = copy.copy(ins)
    out.flags = dict(ins.flags)
    if c in ("ENV", "LABEL"):
        out.args = [w(a) for a in ins.args]
    elif c in ("COPY", "ADD"):
        out.args = [w(a) for a in ins.args]
        for f in ("chown", "chmod", "checksum"):
            if isinstance(ins.flags.get(f), str):
                out.flags[f] = w(ins.flags[f])
    elif c in ("WORKDIR", "USER", "STOPSIGNAL"):
        out.args = [w(ins.args[0])]
    elif c == "VOLUME":
        out.args = [w(a) for a in ins.args]
    elif c == "ARG":
        args = []
        for a in ins.args:
            k, v = split_arg(a)
            args.append(k if v is None else f"{k}={w(v)}")
        out.args = args
    return out


# ---------------------------------------------------------------- instructions

def cmd_line(ins: Instruction, state: State, empty_as_nil: bool = False) -> list[str] | None:
    """moby's resolveCmdLine on Linux: shell form gets the SHELL prepended."""
    args = list(ins.args)
    if not ins.json:
        args = [" ".join(args)] if args and args != [""] else []
    if empty_as_nil and not args:
        return None
    if not ins.json and args:
        return state.shell() + args
    return args


def nop_comment(state: State, comment: str) -> list[str]:
    """withCmdComment: the Cmd a metadata step's history is written from."""
    return state.shell() + ["#(nop) ", comment]


def apply_metadata(ins: Instruction, state: State, lex: ShellLex, out: list[str]) -> str:
    """Apply a config-only instruction to state.config; return its history
    comment (moby's commit message). `out` collects notes for the stream."""
    cfg = state.config
    c, a = ins.cmd, ins.args
    if c == "ENV":
        env = list(cfg.get("Env") or [])
        msg = "ENV"
        for k, v in zip(a[::2], a[1::2]):
            new = f"{k}={v}"
            msg += " " + new
            for i, e in enumerate(env):
                if e.split("=", 1)[0] == k:
                    env[i] = new
                    break
            else:
                env.append(new)
        cfg["Env"] = env
        return msg
    if c == "MAINTAINER":
        state.maintainer = a[0]
        return "MAINTAINER " + a[0]
    if c == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        msg = "LABEL"
        for k, v in zip(a[::2], a[1::2]):
            labels[k] = v
            msg += f" {k}={v}"
        cfg["Labels"] = labels
        return msg
    if c == "ONBUILD":
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [ins.trigger]
        return "ONBUILD " + ins.trigger
    if c == "CMD":
        cmd = cmd_line(ins, state)
        cfg["Cmd"] = cmd
        cfg["ArgsEscaped"] = False
        if cmd:                          # moby: a non-empty command line (not `CMD []`)
            state.cmd_set = True
        return f"CMD {go_q_slice(cmd)}"
    if c == "ENTRYPOINT":
        ep = cmd_line(ins, state, empty_as_nil=True)
        cfg["Entrypoint"] = ep
        cfg["ArgsEscaped"] = False
        if not state.cmd_set:
            cfg["Cmd"] = None
        return f"ENTRYPOINT {go_q_slice(ep)}"
    if c == "HEALTHCHECK":
        hc = parse_healthcheck(ins)
        old = cfg.get("Healthcheck")
        if old and (old.get("Test") or [])[:1] != ["NONE"] and old.get("Test"):
            out.append(f"Note: overriding previous HEALTHCHECK: {go_v_slice(old.get('Test'))}\n")
        cfg["Healthcheck"] = hc
        return f"HEALTHCHECK {healthcheck_comment(hc)}"
    if c == "EXPOSE":
        env = state.env_for_expansion()
        ports: list[str] = []
        for p in a:
            ports += lex.process_words(p, env)
        exposed = dict(cfg.get("ExposedPorts") or {})
        for p in ports:
            for key in parse_port_spec(p):
                exposed[key] = {}
        cfg["ExposedPorts"] = exposed
        return "EXPOSE " + " ".join(ports)
    if c == "USER":
        cfg["User"] = a[0]
        return f"USER {a[0]}"
    if c == "VOLUME":
        vols = dict(cfg.get("Volumes") or {})
        for v in a:
            if not v:
                raise InvalidParameter("VOLUME specified can not be an empty string")
            vols[v] = {}
        cfg["Volumes"] = vols
        return f"VOLUME {go_v_slice(a)}"
    if c == "STOPSIGNAL":
        from .. import signals
        try:
            signals.parse(a[0])
        except Exception as e:
            raise InvalidParameter(getattr(e, "message", None) or str(e)) from None
        cfg["StopSignal"] = a[0]
        return f"STOPSIGNAL {a[0]}"
    if c == "ARG":
        parts = []
        for word in a:
            k, v = split_arg(word)
            parts.append(k if v is None else f"{k}={v}")
            state.args.add_arg(k, v)
        return "ARG " + " ".join(parts)
    if c == "SHELL":
        cfg["Shell"] = list(a)
        return f"SHELL {go_v_slice(a)}"
    if c == "WORKDIR":
        cfg["WorkingDir"] = normalize_workdir(cfg.get("WorkingDir") or "", a[0])
        return "WORKDIR " + cfg["WorkingDir"]
    raise InvalidParameter(f"unsupported command type: {c}")


def normalize_workdir(current: str, requested: str) -> str:
    """moby's normalizeWorkdir (Linux)."""
    if not requested:
        raise InvalidParameter("cannot normalize nothing")
    current = current or "/"
    p = requested if requested.startswith("/") else posixpath.join(current, requested)
    return posixpath.normpath(p) if p != "/" else "/"


def parse_port_spec(spec: str) -> list[str]:
    """nat.ParsePortSpecs for EXPOSE: `80`, `80/udp`, `8000-8002/tcp`."""
    raw, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if ":" in raw:          # an ip:public:private spec: only the private port is exposed
        raw = raw.rsplit(":", 1)[1]
    lo, _, hi = raw.partition("-")
    try:
        start = int(lo)
        end = int(hi) if hi else start
        if not (0 <= start <= 65535 and 0 <= end <= 65535) or end < start:
            raise ValueError
    except ValueError:
        raise InvalidParameter(f"invalid containerPort: {raw}") from None
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise InvalidParameter(f"invalid proto: {proto}")
    return [f"{p}/{proto.lower()}" for p in range(start, end + 1)]


def run_commands(ins: Instruction, state: State) -> tuple[list[str], list[str], list[str]]:
    """RUN: (the command run, the command its history and cache key record,
    the build args added to its environment). moby's dispatchRun and
    prependEnvOnCmd: `|N k=v ... /bin/sh -c cmd` when build args are in effect."""
    if ins.flags:
        flag = next(iter(ins.flags))
        raise InvalidParameter(f"the --{flag} option requires BuildKit. Refer to "
                               "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit "
                               "enabled")
    cmd = cmd_line(ins, state) or []
    build_env = state.args.filter_allowed(state.config.get("Env"))
    save = cmd
    if build_env:
        kept = sorted(e for e in build_env if state.args.referenced_or_not_builtin(e.split("=", 1)[0]))
        save = [f"|{len(kept)}"] + kept + cmd
    return cmd, save, build_env


def run_container_config(state: State, cmd: list[str], build_env: list[str]) -> dict:
    """The config RUN's container is created with (moby: Entrypoint [""]
    so an image ENTRYPOINT does not wrap it, no healthcheck)."""
    cfg = copy.deepcopy(state.config)
    cfg["Cmd"] = cmd
    cfg["ArgsEscaped"] = False
    cfg["Env"] = list(cfg.get("Env") or []) + build_env
    if cmd:
        cfg["Entrypoint"] = [""]
    cfg["Healthcheck"] = {"Test": ["NONE"]}
    cfg["Image"] = state.image_id
    return cfg


def probe_config(state: State, cmd: list[str], *, clear_entrypoint: bool = False) -> dict:
    """moby's runConfigForCacheProbe / runConfigWithCommentCmd: the config
    with Cmd set to what the step records (the image's container_config,
    and what the cache key is made of)."""
    cfg = full_config(state.config)
    cfg["Cmd"] = cmd
    cfg["Image"] = state.image_id
    if clear_entrypoint and cmd:
        cfg["Entrypoint"] = None
    return full_config(cfg)


def copy_comment(cmd_name: str, chown: str, checksum: str, dest: str) -> str:
    """performCopy's history comment: `COPY [--chown=x ]<hash> in <dest> `."""
    chown_part = f"--chown={chown} " if chown else ""
    return f"{cmd_name} {chown_part}{checksum} in {dest} "
