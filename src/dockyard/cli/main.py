"""`dockyard` entry point: global flags, command lookup, error reporting.

Commands live in small modules imported only when run, so `--help` and
simple commands start fast: the table below names each command's module
and function as strings.
"""
from __future__ import annotations

import os
import sys

from .flags import HelpRequested, UsageError, parse_bool
from .subcommands import PROG, Group

# command → (module, function, summary)
COMMANDS = {
    "run": ("run", "run", "Create and run a new container from an image"),
    "create": ("run", "create", "Create a new container"),
    "start": ("run", "start", "Start one or more stopped containers"),
    "stop": ("lifecycle", "stop", "Stop one or more running containers"),
    "kill": ("lifecycle", "kill", "Kill one or more running containers"),
    "restart": ("lifecycle", "restart", "Restart one or more containers"),
    "rm": ("lifecycle", "rm", "Remove one or more containers"),
    "wait": ("lifecycle", "wait", "Block until one or more containers stop, then print their exit codes"),
    "rename": ("lifecycle", "rename", "Rename a container"),
    "ps": ("ps", "ps", "List containers"),
    "logs": ("logs", "logs", "Fetch the logs of a container"),
    "exec": ("streams", "exec_", "Execute a command in a running container"),
    "attach": ("streams", "attach", "Attach local standard input, output, and error streams to a running container"),
    "stats": ("streams", "stats", "Display a live stream of container(s) resource usage statistics"),
    "top": ("streams", "top", "Display the running processes of a container"),
    "inspect": ("inspect", "inspect", "Return low-level information on Docker objects"),
    "trace": ("trace", "trace", "Show the timed steps of a container's last start"),
    "checkpoint": ("checkpoint", "main", "Manage checkpoints (create, ls, rm, export, import)"),
    "volume": ("volumes", "main", "Manage volumes"),
    "network": ("networks", "main", "Manage networks"),
    "port": ("port", "port", "List port mappings or a specific mapping for the container"),
    "images": ("images", "images", "List images"),
    "tag": ("images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "rmi": ("images", "rmi", "Remove one or more images"),
    "import": ("image_io", "import_", "Import the contents from a tarball to create a filesystem image"),
    "load": ("image_io", "load", "Load an image from a tar archive or STDIN"),
    "pull": ("registry", "pull", "Download an image from a registry"),
    "push": ("registry", "push", "Upload an image to a registry"),
    "login": ("registry", "login", "Log in to a registry"),
    "logout": ("registry", "logout", "Log out from a registry"),
    "save": ("image_cmds", "save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "history": ("image_cmds", "history", "Show the history of an image"),
    "build": ("build", "build", "Build an image from a Dockerfile"),
    "commit": ("fs_cmds", "commit", "Create a new image from a container's changes"),
    "diff": ("fs_cmds", "diff", "Inspect changes to files or directories on a container's filesystem"),
    "export": ("fs_cmds", "export", "Export a container's filesystem as a tar archive"),
    "cp": ("fs_cmds", "cp", "Copy files/folders between a container and the local filesystem"),
    "version": ("system", "version", "Show the dockyard version information"),
    "events": ("events", "events", "Get real time events from the server"),
    "pause": ("steer", "pause", "Pause all processes within one or more containers"),
    "unpause": ("steer", "unpause", "Unpause all processes within one or more containers"),
    "update": ("steer", "update", "Update configuration of one or more containers"),
    "info": ("system", "info", "Display system-wide information"),
}

# management commands: `dockyard container ls` → ps, etc. Each entry names a
# command above, or a (module, function) that is no top-level command
GROUPS = {group.name: group for group in (
    Group("container", "Manage containers", {
        "ls": "ps", "list": "ps", "ps": "ps", "rm": "rm", "remove": "rm", "run": "run",
        "create": "create", "start": "start", "stop": "stop", "kill": "kill",
        "restart": "restart", "inspect": ("inspect", "container"), "logs": "logs",
        "wait": "wait", "rename": "rename", "prune": ("lifecycle", "prune"), "trace": "trace",
        "exec": "exec", "attach": "attach", "stats": "stats", "top": "top",
        "pause": "pause", "unpause": "unpause", "update": "update", "port": "port",
        "commit": "commit", "diff": "diff", "export": "export", "cp": "cp",
    }),
    Group("image", "Manage images", {
        "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag",
        "import": "import", "load": "load", "inspect": ("inspect", "image"),
        "pull": "pull", "push": "push", "save": "save", "history": "history",
        "prune": ("image_cmds", "prune"), "build": "build",
    }),
    Group("builder", "Manage builds", {"build": "build", "prune": ("build", "prune")}),
    Group("system", "Manage Dockyard", {
        "info": "info", "version": "version", "events": "events",
        "df": ("disk", "df"), "prune": ("disk", "prune"), "dial-stdio": ("system", "dial_stdio"),
    }),
)}
# summaries of group entries that are not top-level commands
SUB_SUMMARIES = {("disk", "df"): "Show docker disk usage",
                 ("system", "dial_stdio"): "Proxy the stdio stream to the daemon connection", ("disk", "prune"): "Remove unused data",
                 ("build", "prune"): "Remove build cache",
                 ("image_cmds", "prune"): "Remove unused images",
                 ("lifecycle", "prune"): "Remove all stopped containers"}


class Cli:
    """What every command gets: the endpoint to talk to and how to print."""

    def __init__(self, endpoint, command_path: str):
        self.endpoint = endpoint                  # endpoints.Endpoint (host, TLS)
        self.host = endpoint.host if endpoint is not None else None
        self.command_path = command_path      # "dockyard container ls", for messages
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ..client import Client
            self._client = Client(endpoint=self.endpoint)
        return self._client

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        sys.stderr.write(text + "\n")

    def each(self, names: list[str], action, ignore=None) -> int:
        """docker's multi-object verbs (`rm A B`, `stop A B` …): `action(name)`
        for each name in turn, printing what it returns (the name when it
        returns None, nothing when ""); then the daemon's errors that
        `ignore(err)` does not excuse, and status 1 if there were any."""
        from ..client import DaemonError
        errors = []
        for name in names:
            try:
                shown = action(name)
            except DaemonError as err:
                if ignore is None or not ignore(err):
                    errors.append(f"Error response from daemon: {err.message}")
                continue
            if shown != "":
                self.out(name if shown is None else shown)
        if errors:
            self.err("\n".join(errors))
            return 1
        return 0


def _usage() -> str:
    width = max(len(n) for n in list(COMMANDS) + list(GROUPS)) + 2
    lines = [
        f"\nUsage:  {PROG} [OPTIONS] COMMAND\n",
        "A Docker-compatible container engine\n",
        "Commands:",
    ]
    lines += [f"  {name.ljust(width)}{summary}" for name, (_, _, summary) in COMMANDS.items()]
    lines += ["", "Management Commands:"]
    lines += [f"  {name.ljust(width)}{group.summary}" for name, group in GROUPS.items()]
    lines += [
        "", "Global Options:",
        "  -c, --context string   Name of the docker context to use (docker's context store)",
        "  -H, --host string   Daemon socket to connect to: unix://, tcp://, ssh:// (default",
        "                      $DOCKYARD_HOST, $DOCKER_HOST, or unix:///run/dockyard/dockyard.sock)",
        "      --tls           Use TLS; implied by --tlsverify",
        "      --tlscacert, --tlscert, --tlskey string   TLS files (default $DOCKER_CERT_PATH or ~/.docker)",
        "      --tlsverify     Use TLS and verify the remote ($DOCKER_TLS_VERIFY)",
        "  -v, --version       Print version information and quit",
        "  -h, --help          Print usage",
        "",
        f"Run '{PROG} COMMAND --help' for more information on a command.",
    ]
    return "\n".join(lines) + "\n"


def _describe(target: str | tuple[str, str]) -> str:
    """A group entry's summary, without importing its module."""
    if target in SUB_SUMMARIES:
        return SUB_SUMMARIES[target]
    if isinstance(target, tuple):
        return f"Display detailed information on one or more {target[1]}s"
    return COMMANDS[target][2]


_GLOBAL_VALUES = {"-H": "host", "--host": "host", "-c": "context", "--context": "context",
                  "--tlscacert": "cacert", "--tlscert": "cert", "--tlskey": "key", "-l": "log_level",
                  "--log-level": "log_level", "--config": "config"}
_GLOBAL_BOOLS = {"--tls": "tls", "--tlsverify": "tlsverify", "-D": "debug", "--debug": "debug"}


def _split_globals(argv: list[str]) -> tuple[dict, list[str]]:
    """Global flags come before the command, as docker's: -H/--host,
    -c/--context, --tls, --tlsverify, --tlscacert/--tlscert/--tlskey,
    --config, -D, -l, -v/--version, -h/--help."""
    opts: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_VALUES:
            if not eq:
                if i + 1 >= len(argv):
                    raise UsageError(f"flag needs an argument: {arg}")
                value = argv[i + 1]
                i += 1
            opts[_GLOBAL_VALUES[name]] = value
            i += 1
        elif arg.startswith("-H") and len(arg) > 2:
            opts["host"] = arg[2:].lstrip("=")
            i += 1
        elif name in _GLOBAL_BOOLS:
            opts[_GLOBAL_BOOLS[name]] = parse_bool(value, name) if eq else True
            i += 1
        elif arg.startswith("-") and arg not in ("-v", "--version", "-h", "--help"):
            raise UsageError(f"unknown flag: {arg}\n\nUsage:  {PROG} [OPTIONS] COMMAND [ARG...]\n\n"
                             f"Run '{PROG} --help' for more information")
        else:
            break
    if "config" in opts:
        os.environ["DOCKER_CONFIG"] = opts["config"]
    return opts, argv[i:]


def _endpoint(opts: dict):
    from ..endpoints import EndpointError, resolve
    if opts.get("host") and opts.get("context"):
        raise UsageError('conflicting options: cannot specify both --host and --context')
    try:
        return resolve(opts.get("host"), context=opts.get("context"), tls=opts.get("tls"),
                       tlsverify=opts.get("tlsverify"), cacert=opts.get("cacert", ""),
                       cert=opts.get("cert", ""), key=opts.get("key", ""))
    except EndpointError as e:
        raise UsageError(str(e), code=1) from None


def _resolve(rest: list[str]) -> tuple[tuple[str, str] | None, str, list[str]]:
    """argv after globals → ((module, function), shown command path, args)."""
    name = rest[0]
    if name in GROUPS:
        target, path, args = GROUPS[name].pick(rest[1:])
        if target is None:
            return None, path, []
        if isinstance(target, tuple):
            module, arg = target
            if module == "inspect":  # `container inspect` / `image inspect` fix the type
                return ("inspect", "inspect"), path, ["--type", arg] + args
            return (module, arg), path, args
        module, function, _ = COMMANDS[target]
        return (module, function), path, args
    if name not in COMMANDS:
        raise UsageError(f"{PROG}: unknown command: {PROG} {name}\n\n"
                         f"Run '{PROG} --help' for more information", code=1)
    module, function, _ = COMMANDS[name]
    return (module, function), f"{PROG} {name}", rest[1:]


def run(argv: list[str]) -> int:
    try:
        opts, rest = _split_globals(argv)
        if not rest or rest[0] in ("-h", "--help", "help"):
            sys.stdout.write(_usage())
            return 0
        if rest[0] in ("-v", "--version"):
            from .. import __version__
            sys.stdout.write(f"Dockyard version {__version__}\n")
            return 0
        target, path, args = _resolve(rest)
        if target is None:
            sys.stdout.write(GROUPS[rest[0]].usage(_describe))
            return 0
        name = f"{__package__}.{target[0]}"
        __import__(name)    # not importlib.import_module: importing importlib costs the start ~0.5 ms
        handler = getattr(sys.modules[name], target[1])
        return handler(Cli(_endpoint(opts), path), args) or 0
    except HelpRequested as req:
        sys.stdout.write(req.args[0] if req.args else "")
        return 0
    except UsageError as err:
        sys.stderr.write(err.message + "\n")
        return err.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # e.g. `dockyard ps | head -1`; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 — the client's errors, printed docker's way
        return _report(err)


def _report(err: Exception) -> int:
    from ..client import ConnectError, DaemonError
    if isinstance(err, DaemonError):
        sys.stderr.write(f"Error response from daemon: {err.message}\n")
        return 1
    if isinstance(err, ConnectError):
        sys.stderr.write(f"{err}\n")
        return 1
    from .template import TemplateError
    if isinstance(err, TemplateError):
        sys.stderr.write(f"template parsing error: {err}\n")
        return 1
    raise err


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
