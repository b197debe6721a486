"""Parsing a Dockerfile: moby's own parser (the `dockerfile` package wraps
buildkit's Go parser: directives, continuations, comments, JSON forms),
then what buildkit's `instructions.Parse` checks before anything runs:
known instructions, flags, argument counts, stage names. Every error is
Docker's `dockerfile parse error on line N: ...`.

The result is plain data: `Dockerfile(escape, meta_args, stages)`, each
stage a `Stage` (FROM's base, name, platform) with its `Instruction`s.
Word expansion happens later, at dispatch (it needs the state so far).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile as _parser

from ...errors import InvalidParameter

# The instructions buildkit knows (command.Commands), upper case.
INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")

# The flags each instruction takes: name -> True for a boolean flag.
_FLAGS: dict[str, dict[str, bool]] = {
    "FROM": {"platform": False},
    "COPY": {"from": False, "chown": False, "chmod": False, "link": True, "parents": True, "exclude": False},
    "ADD": {"chown": False, "chmod": False, "link": True, "keep-git-dir": True, "checksum": False,
            "exclude": False},
    "RUN": {"mount": False, "network": False, "security": False, "device": False},
    "HEALTHCHECK": {"interval": False, "timeout": False, "start-period": False, "start-interval": False,
                    "retries": False},
}

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


class ParseError(InvalidParameter):
    """A Dockerfile error before any step ran (400, moby's wording)."""


@dataclass
class Instruction:
    cmd: str                      # upper case: RUN, COPY ...
    original: str                 # the source text, continuations joined (what `Step n/m :` shows)
    args: list[str]               # the parser's words (JSON form: the array's items)
    json: bool = False            # exec (JSON) form
    flags: dict[str, str | bool] = field(default_factory=dict)
    line: int = 0
    heredocs: tuple = ()
    trigger: str = ""             # ONBUILD: the trigger expression, as the image records it
    no_expand: bool = False       # --label's LABELs: taken as given (moby's NewLabelCommand(noExp))

    def __str__(self) -> str:
        return self.original


@dataclass
class Stage:
    base: str                     # FROM's image (unexpanded)
    name: str = ""                # AS name, lower case
    platform: str = ""
    original: str = ""
    line: int = 0
    commands: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    escape: str = "\\"
    meta_args: list[Instruction] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)

    def stage_index(self, name: str) -> int | None:
        for i, s in enumerate(self.stages):
            if s.name and s.name == name.lower():
                return i
        return None


def escape_token(text: str) -> str:
    """The `# escape=` parser directive (only at the top, before anything else)."""
    for line in text.splitlines():
        m = _DIRECTIVE.match(line.strip())
        if not m:
            break
        if m.group(1).lower() == "escape":
            tok = m.group(2)
            if tok not in ("\\", "`"):
                raise ParseError(f"invalid escape token '{tok}' does not match ` or \\")
            return tok
    return "\\"


def _error_line(text: str, message: str) -> int:
    """The line a parser error is about: the Go wrapper reports no location,
    so the shortest prefix of the file that fails the same way names it."""
    lines = text.splitlines(keepends=True)
    for n in range(1, len(lines) + 1):
        try:
            _parser.parse_string("".join(lines[:n]))
        except _parser.GoParseError as e:
            if str(e) == message:
                return n
        except Exception:
            pass
    return len(lines)


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _suggest(word: str) -> str:
    """buildkit's suggest.Search: the closest instruction within distance 2."""
    best, mindist = "", 3
    low = word.lower()
    for opt in INSTRUCTIONS:
        d = _levenshtein(low, opt.lower())
        if d < mindist:
            best, mindist = opt, d
    if not best:
        return ""
    if word == word.lower():
        return best.lower()
    return best if word == word.upper() else best


def _parse_flags(cmd: str, raw: tuple) -> dict[str, str | bool]:
    known = _FLAGS.get(cmd, {})
    out: dict[str, str | bool] = {}
    for a in raw:
        if not a.startswith("--"):
            raise InvalidParameter(f"arg should start with -- : {a}")
        name, eq, value = a[2:].partition("=")
        if name not in known:
            raise InvalidParameter(f"unknown flag: {name}")
        if name in out and name != "exclude":
            raise InvalidParameter(f"duplicate flag specified: {name}")
        if known[name]:
            if eq and value.lower() not in ("true", "false"):
                raise InvalidParameter(f"expecting boolean value for flag {name}, not: {value}")
            out[name] = (value.lower() != "false") if eq else True
        else:
            if not eq:
                raise InvalidParameter(f"missing a value on flag: {name}")
            out[name] = value
    return out


def _check(ins: Instruction) -> None:
    """buildkit's per-instruction checks (instructions/parse.go), in its words."""
    c, a = ins.cmd, ins.args
    if c in ("ENV", "LABEL"):
        if not a or a == [""]:
            raise InvalidParameter(f"{c} requires at least one argument")
        if len(a) % 2:
            raise InvalidParameter(f"Bad input to {c}, too many arguments")
        for k in a[::2]:
            if not k:
                raise InvalidParameter(f"{c} names can not be blank")
    elif c == "MAINTAINER":
        if len(a) != 1 or not a[0]:
            raise InvalidParameter("MAINTAINER requires exactly one argument")
    elif c in ("ADD", "COPY"):
        if len(a) < 2:
            raise InvalidParameter(f"{c} requires at least two arguments, but only one was provided. "
                                   "Destination could not be determined")
    elif c == "ONBUILD":
        if not a or not a[0].strip():
            raise InvalidParameter("ONBUILD requires at least one argument")
        trig = a[0].split(None, 1)[0].upper() if a[0].split() else ""
        if trig == "ONBUILD":
            raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trig in ("MAINTAINER", "FROM"):
            raise InvalidParameter(f"{trig} isn't allowed as an ONBUILD trigger")
    elif c in ("WORKDIR", "USER", "STOPSIGNAL"):
        if len(a) != 1 or not a[0]:
            raise InvalidParameter(f"{c} requires exactly one argument")
    elif c in ("EXPOSE", "VOLUME", "ARG"):
        if not a or a == [""]:
            raise InvalidParameter(f"{c} requires at least one argument")
        if c == "VOLUME" and any(not v.strip() for v in a):
            raise InvalidParameter("VOLUME specified can not be an empty string")
        if c == "ARG" and any(x.startswith("=") for x in a):
            raise InvalidParameter("ARG names can not be blank")
    elif c == "SHELL":
        if not a or a == [""]:
            raise InvalidParameter("SHELL requires at least one argument")
        if not ins.json:
            raise InvalidParameter("SHELL requires the arguments to be in JSON form")
    elif c == "HEALTHCHECK":
        parse_healthcheck(ins)


def parse_healthcheck(ins: Instruction) -> dict:
    """HEALTHCHECK's config (durations in ns, as the image records them)."""
    a = ins.args
    if not a or not a[0]:
        raise InvalidParameter("HEALTHCHECK requires at least one argument")
    typ = a[0].upper()
    if typ == "NONE":
        if len(a) != 1 or ins.flags:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if typ != "CMD":
        raise InvalidParameter(f'Unknown type "{a[0].upper()}" in HEALTHCHECK (try CMD)')
    rest = a[1:]
    if ins.json:
        test = ["CMD"] + rest
    else:
        line = " ".join(rest)
        test = ["CMD-SHELL", line] if rest else []
    if not rest:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    hc: dict = {"Test": test}
    from ...durations import parse_ns
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                      ("start-interval", "StartInterval")):
        v = ins.flags.get(flag)
        if v:
            try:
                ns = parse_ns(str(v))
            except ValueError as e:
                raise InvalidParameter(str(e)) from None
            if 0 < ns < 1_000_000:
                raise InvalidParameter(f'Interval "{flag}" cannot be less than 1ms')
            if ns:
                hc[key] = ns
    r = ins.flags.get("retries")
    if r:
        try:
            retries = int(str(r))
        except ValueError:
            raise InvalidParameter(f'strconv.ParseInt: parsing "{r}": invalid syntax') from None
        if retries < 0:
            raise InvalidParameter(f"--retries cannot be negative ({retries})")
        if retries:
            hc["Retries"] = retries
    return hc


def _instruction(cmd) -> Instruction:
    name = cmd.cmd.upper()
    if name not in INSTRUCTIONS:
        hint = _suggest(cmd.cmd)
        raise InvalidParameter(f"unknown instruction: {cmd.cmd}" + (f" (did you mean {hint}?)" if hint else ""))
    ins = Instruction(cmd=name, original=cmd.original.strip(), args=list(cmd.value), json=bool(cmd.json),
                      line=cmd.start_line, heredocs=tuple(cmd.heredocs))
    if name == "ONBUILD":
        ins.trigger = re.sub(r"(?i)^\s*ONBUILD\s*", "", cmd.original)
        for h in cmd.heredocs:
            ins.trigger += "\n" + h.content + h.name
        ins.args = [ins.trigger]
    else:
        ins.flags = _parse_flags(name, tuple(cmd.flags))
    _check(ins)
    return ins


def parse(data: bytes | str, name: str = "Dockerfile") -> Dockerfile:
    """The Dockerfile's stages and meta ARGs, or ParseError in Docker's words."""
    if not data:
        raise ParseError(f"the Dockerfile ({name}) cannot be empty")
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        escape = escape_token(text)
    except ParseError as e:
        raise ParseError(f"dockerfile parse error on line 1: {e.message}") from None
    try:
        cmds = _parser.parse_string(text)
    except _parser.GoParseError as e:
        msg = str(e)
        raise ParseError(f"dockerfile parse error on line {_error_line(text, msg)}: {msg}") from None
    if not cmds:
        raise ParseError("file with no instructions")
    df = Dockerfile(escape=escape)
    for c in cmds:
        try:
            ins = _instruction(c)
        except InvalidParameter as e:
            raise ParseError(f"dockerfile parse error on line {c.start_line}: {e.message}") from None
        if ins.cmd == "FROM":
            a = ins.args
            if len(a) == 3 and a[1].lower() == "as":
                name = a[2].lower()
                if not _STAGE_NAME.match(name):
                    raise ParseError(f"dockerfile parse error on line {c.start_line}: invalid name for build "
                                     f"stage: \"{a[2]}\", name can't start with a number or contain symbols")
            elif len(a) != 1:
                raise ParseError(f"dockerfile parse error on line {c.start_line}: "
                                 "FROM requires either one or three arguments")
            else:
                name = ""
            df.stages.append(Stage(base=a[0], name=name, platform=str(ins.flags.get("platform") or ""),
                                   original=ins.original, line=ins.line))
        elif not df.stages:
            if ins.cmd != "ARG":
                raise ParseError(f"dockerfile parse error on line {c.start_line}: no build stage in current "
                                 "context")
            df.meta_args.append(ins)
        else:
            df.stages[-1].commands.append(ins)
    if not df.stages:
        raise ParseError("dockerfile parse error on line 1: no build stage in current context"
                         if not df.meta_args else "No image was generated. Is your Dockerfile empty?")
    return df


def split_arg(word: str) -> tuple[str, str | None]:
    """ARG name[=value]: (name, value or None)."""
    if "=" in word:
        k, v = word.split("=", 1)
        return k, v
    return word, None
