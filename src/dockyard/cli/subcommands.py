"""Management commands: `dockyard network ls`, `dockyard container ps` …

One dispatcher for every group, whether its table lives in main.py
(container, image, system: entries that name other commands, imported
only when run) or in the group's own module (network, volume, checkpoint:
entries that are that module's functions). It owns what all groups
share: the help listing, the unknown-subcommand error, and the command
path that the subcommand's own messages show.
"""
from __future__ import annotations

import sys

from .flags import UsageError

PROG = "dockyard"


class Group:
    """`dockyard NAME SUB [ARG...]`.

    `subs` maps every SUB, aliases included, to a target; `listed` names
    the help's rows in their order (default: every SUB, in table order).
    Called as a command, a group runs targets that are
    `(function, flags.Command)` pairs; main.py's groups, whose targets
    name commands, use `pick` and `usage` themselves."""

    def __init__(self, name: str, summary: str, subs: dict[str, object],
                 listed: tuple[str, ...] | None = None):
        self.name = name
        self.summary = summary
        self.subs = subs
        self.listed = listed or tuple(subs)

    def usage(self, describe) -> str:
        """The group's help; `describe(target)` gives a row's summary."""
        width = max(len(name) for name in self.listed) + 2
        lines = [f"\nUsage:  {PROG} {self.name} COMMAND\n", self.summary + "\n", "Commands:"]
        lines += [f"  {name.ljust(width)}{describe(self.subs[name])}" for name in self.listed]
        lines += ["", f"Run '{PROG} {self.name} COMMAND --help' for more information on a command."]
        return "\n".join(lines) + "\n"

    def pick(self, argv: list[str]) -> tuple[object | None, str, list[str]]:
        """argv after the group's name → (target, command path, the
        subcommand's arguments); no target when help was asked for."""
        if not argv or argv[0] in ("-h", "--help"):
            return None, f"{PROG} {self.name}", []
        target = self.subs.get(argv[0])
        if target is None:
            raise UsageError(f"{PROG}: unknown command: {PROG} {self.name} {argv[0]}\n\n"
                             f"Run '{PROG} {self.name} --help' for more information", code=1)
        return target, f"{PROG} {self.name} {argv[0]}", argv[1:]

    def __call__(self, cli, argv: list[str]) -> int:
        target, path, args = self.pick(argv)
        if target is None:
            sys.stdout.write(self.usage(lambda sub: sub[1].summary))
            return 0
        function, _ = target
        cli.command_path = path
        return function(cli, args)
