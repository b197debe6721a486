"""Command-line flags with docker's (spf13/pflag) rules.

argparse differs from docker where users notice: `run IMAGE CMD -x` must
give `-x` to CMD, short flags combine (`-dit`, `-eA=1`, `-e=A=1`),
`--rm=false` is a bool with a value, errors exit 125. This is that subset,
and it imports nothing.
"""
from __future__ import annotations



BOOL, STRING, INT, LIST = "bool", "string", "int", "list"


class UsageError(Exception):
    """Bad flags or arguments; `code` is the exit status (docker: 125 for
    flag errors, 1 for a wrong number of arguments)."""

    def __init__(self, message: str, code: int = 125):
        super().__init__(message)
        self.message = message
        self.code = code


class HelpRequested(Exception):
    pass


class Flag:
    """One flag: long name without dashes ("env"), optional one-letter short."""
    # a plain class: importing dataclasses would cost more than the CLI's whole startup budget allows
    __slots__ = ("long", "short", "kind", "default", "help", "hidden")

    def __init__(self, long: str, short: str = "", kind: str = BOOL, default: object = None,
                 help: str = "", hidden: bool = False):
        self.long = long
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help
        self.hidden = hidden

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    def initial(self) -> object:
        if self.kind == LIST:
            return list(self.default or [])
        if self.default is None and self.kind == BOOL:
            return False
        return self.default


class Options:
    """Parsed flag values as attributes; `given` holds the flags the user set."""

    def __init__(self, flags: list[Flag]):
        for flag in flags:
            setattr(self, flag.dest, flag.initial())
        self.given: set[str] = set()

    def __repr__(self) -> str:
        return f"Options({vars(self)})"


def parse_bool(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise UsageError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                     f'parsing "{value}": invalid syntax')


class Command:
    """One command's flags and argument rules, plus its help text."""

    def __init__(self, usage: str, summary: str, flags: list[Flag] = (), *,
                 min_args: int = 0, max_args: int | None = None,
                 interspersed: bool = True, aliases: str = ""):
        self.usage = usage            # "[OPTIONS] CONTAINER [CONTAINER...]"
        self.summary = summary
        self.flags = list(flags) + [Flag("help", help="Print usage", hidden=True)]
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed  # False: flags end at the first argument
        self.aliases = aliases
        self._long = {f.long: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    # -- parsing
    def parse(self, argv: list[str], prog: str) -> tuple[Options, list[str]]:
        try:
            opts, args = self._parse(argv)
        except UsageError as err:
            err.message = (f"{err.message}\n\nUsage:  {prog} {self.usage}\n\n"
                           f"Run '{prog} --help' for more information")
            raise
        if opts.help:
            raise HelpRequested(self.help_text(prog))
        self._check_count(args, prog)
        return opts, args

    def _parse(self, argv: list[str]) -> tuple[Options, list[str]]:
        opts = Options(self.flags)
        args: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                args.extend(argv[i:])
                break
            if arg.startswith("--") and len(arg) > 2:
                name, eq, value = arg[2:].partition("=")
                flag = self._long.get(name)
                if flag is None:
                    raise UsageError(f"unknown flag: --{name}")
                if eq:
                    self._set(opts, flag, value)
                elif flag.kind == BOOL:
                    self._set(opts, flag, "true")
                else:
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: --{name}")
                    self._set(opts, flag, argv[i])
                    i += 1
            elif arg.startswith("-") and len(arg) > 1:
                i = self._parse_shorts(opts, arg[1:], argv, i)
            else:
                args.append(arg)
                if not self.interspersed:
                    args.extend(argv[i:])
                    break
        return opts, args

    def _parse_shorts(self, opts: Options, letters: str, argv: list[str], i: int) -> int:
        pos = 0
        while pos < len(letters):
            letter = letters[pos]
            flag = self._short.get(letter)
            if flag is None:
                if letter == "h":
                    flag = self._long["help"]
                else:
                    raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters}")
            rest = letters[pos + 1:]
            if flag.kind == BOOL:
                if rest.startswith("="):
                    self._set(opts, flag, rest[1:])
                    return i
                self._set(opts, flag, "true")
                pos += 1
                continue
            if rest:  # -eA=1 or -e=A=1
                self._set(opts, flag, rest[1:] if rest.startswith("=") else rest)
                return i
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: '{letter}' in -{letter}")
            self._set(opts, flag, argv[i])
            return i + 1
        return i

    def _set(self, opts: Options, flag: Flag, value: str) -> None:
        opts.given.add(flag.dest)
        shown = f"-{flag.short}, --{flag.long}" if flag.short else f"--{flag.long}"
        if flag.kind == BOOL:
            setattr(opts, flag.dest, parse_bool(value, shown))
        elif flag.kind == INT:
            try:
                setattr(opts, flag.dest, int(value))
            except ValueError:
                raise UsageError(f'invalid argument "{value}" for "{shown}" flag: '
                                 f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        elif flag.kind == LIST:
            getattr(opts, flag.dest).append(value)
        else:
            setattr(opts, flag.dest, value)

    def _check_count(self, args: list[str], prog: str) -> None:
        """docker's cobra argument checks, worded as docker words them."""
        def plural(n: int) -> str:
            return f"{n} argument" + ("s" if n != 1 else "")
        hint = "Run"
        if self.max_args == 0 and args:
            problem = "accepts no arguments"
        elif self.min_args == self.max_args and len(args) != self.min_args:
            problem = f"requires {plural(self.min_args)}"
        elif len(args) < self.min_args:
            problem, hint = f"requires at least {plural(self.min_args)}", "See"
        elif self.max_args is not None and len(args) > self.max_args:
            problem = f"requires at most {plural(self.max_args)}"
        else:
            return
        raise UsageError(f"{prog.split()[0]}: '{prog}' {problem}\n\nUsage:  {prog} {self.usage}\n\n"
                         f"{hint} '{prog} --help' for more information", code=1)

    # -- help
    def help_text(self, prog: str) -> str:
        out = [f"\nUsage:  {prog} {self.usage}\n", self.summary + "\n"]
        if self.aliases:
            out.append(f"Aliases:\n  {self.aliases}\n")
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            out.append("Options:")
            rows = []
            for f in shown:
                names = (f"-{f.short}, " if f.short else "    ") + f"--{f.long}"
                kind = "" if f.kind == BOOL else (" " + ("list" if f.kind == LIST else f.kind))
                rows.append((names + kind, f.help + _default_note(f)))
            width = max(len(r[0]) for r in rows) + 3
            out.extend(f"  {left.ljust(width)}{right}".rstrip() for left, right in rows)
        return "\n".join(out) + "\n"


def key_values(items: list[str]) -> dict[str, str]:
    """`KEY=VALUE` list-flag values (--label, --opt …) → a dict; a bare
    `KEY` maps to ""."""
    return {key: value for key, _, value in (item.partition("=") for item in items)}


def _default_note(flag: Flag) -> str:
    if flag.kind in (BOOL, LIST) or flag.default in (None, ""):
        return ""
    shown = f'"{flag.default}"' if flag.kind == STRING else str(flag.default)
    return f" (default {shown})"
