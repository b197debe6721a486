"""`inspect`: containers, falling back to images (or one `--type`)."""
from __future__ import annotations

from ..client import DaemonError
from . import template
from .flags import STRING, Command, Flag

INSPECT = Command("[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", [
    Flag("format", "f", STRING, help="Format output using a custom template"),
    Flag("type", kind=STRING, help="Only inspect objects of the given type"),
    Flag("size", "s", help="Display total file sizes if the type is container"),
], min_args=1, aliases="dockyard inspect")

# --type → (API path for one object, "No such …" noun)
_KINDS = {
    "container": ("/containers/{}/json", "container"),
    "image": ("/images/{}/json", "image"),
}


def fetch(cli, name: str, kinds: list[str], size: bool) -> object:
    """The first kind that knows `name`; None when none does."""
    for kind in kinds:
        path = _KINDS[kind][0].format(name)
        query = {"size": 1} if size and kind == "container" else None
        try:
            return cli.client.get(path, query)
        except DaemonError as err:
            if err.status != 404:
                raise
    return None


def pretty_json(objects: list) -> str:
    """Go's json.Indent with 4 spaces, as docker prints inspect output."""
    import json
    return json.dumps(objects, indent=4, ensure_ascii=False)


def inspect_by_path(cli, path_prefix: str, names: list[str], fmt: str | None) -> int:
    """`network inspect` / `volume inspect`: GET {path_prefix}/{name} for each
    name, printed as a JSON array or through --format; a 404 is reported
    and the others still printed, as docker does."""
    tmpl = template.parse(fmt) if fmt else None
    found, failed = [], False
    for name in names:
        try:
            obj = cli.client.get(f"{path_prefix}/{name}")
        except DaemonError as err:
            if err.status != 404:
                raise
            cli.err(f"Error response from daemon: {err.message}")
            failed = True
            continue
        if tmpl is not None:
            cli.out(tmpl.execute(obj))
        else:
            found.append(obj)
    if tmpl is None:
        cli.out(pretty_json(found))
    return 1 if failed else 0


def inspect(cli, argv: list[str]) -> int:
    opts, names = INSPECT.parse(argv, cli.command_path)
    if opts.type and opts.type not in _KINDS:
        cli.err(f'"{opts.type}" is not a valid value for --type')
        return 1
    kinds = [opts.type] if opts.type else list(_KINDS)
    tmpl = template.parse(opts.format) if opts.format else None
    found, missing = [], []
    for name in names:
        obj = fetch(cli, name, kinds, opts.size)
        if obj is None:
            noun = _KINDS[opts.type][1] if opts.type else "object"
            missing.append(f"No such {noun}: {name}")
        elif tmpl is not None:
            cli.out(tmpl.execute(obj))
        else:
            found.append(obj)
    if tmpl is None:
        cli.out(pretty_json(found))  # docker prints `[]` even when nothing was found
    if missing:
        cli.err("Error: " + "\n".join(missing))
        return 1
    return 0
