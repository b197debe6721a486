"""`ps`: list containers, docker's columns and --format keys."""
from __future__ import annotations

import time

from .filters import filters_param
from .flags import INT, LIST, STRING, Command, Flag
from .formatting import ago, ellipsis, go_quote, human_size, local_time, short_id
from .listing import Row, labels_text, print_rows

PS = Command("[OPTIONS]", "List containers", [
    Flag("all", "a", help="Show all containers (default shows just running)"),
    Flag("filter", "f", LIST, help="Filter output based on conditions provided"),
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("last", "n", INT, default=-1, help="Show n last created containers (includes all states)"),
    Flag("latest", "l", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only display container IDs"),
    Flag("size", "s", help="Display total file sizes"),
], max_args=0, aliases="dockyard container ls, dockyard container list, dockyard container ps, dockyard ps")

DEFAULT_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
    "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}


class ContainerRow(Row):
    def Label(self, key: str) -> str:  # noqa: N802 — docker's template method name
        return self.labels.get(key, "")


class HeaderRow(Row):
    def Label(self, key: str) -> str:  # noqa: N802
        return key  # docker titles a label column with the label's key


def _image(c: dict, trunc: bool) -> str:
    image = c.get("Image") or ""
    if not image:
        return "<no image>"
    if trunc:
        if short_id(c.get("ImageID") or "") == short_id(image):
            return short_id(image)
        image = image.split("@", 1)[0]  # drop the digest, keep any tag
    return image


def _names(c: dict, trunc: bool) -> str:
    names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
    if trunc:
        # links show up as /other/alias; the container's own name has no slash
        own = [n for n in names if "/" not in n]
        names = own[:1] or names
    return ",".join(names)


def format_ports(ports: list[dict]) -> str:
    """docker's DisplayablePorts: `443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp`.

    Unpublished ports and same-number mappings are merged into ranges per
    (ip, proto) in first-seen order; other mappings follow, one each."""
    ordered = sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("IP") or "",
                                                 p.get("PublicPort", 0), p.get("Type", "")))
    groups: dict[tuple[str, str], list[list[int]]] = {}
    mappings = []
    for p in ordered:
        private, proto, ip = p.get("PrivatePort", 0), p.get("Type", "tcp"), p.get("IP") or ""
        if ip and p.get("PublicPort") != private:
            host = f"[{ip}]" if ":" in ip else ip
            mappings.append(f"{host}:{p.get('PublicPort')}->{private}/{proto}")
            continue
        ranges = groups.setdefault((ip, proto), [])
        if ranges and private == ranges[-1][1] + 1:
            ranges[-1][1] = private
        else:
            ranges.append([private, private])
    shown = []
    for (ip, proto), ranges in groups.items():
        for first, last in ranges:
            span = str(first) if first == last else f"{first}-{last}"
            shown.append(f"{ip}:{span}->{span}/{proto}" if ip else f"{span}/{proto}")
    return ", ".join(shown + mappings)


def _status(c: dict) -> str:
    return c.get("Status") or (c.get("State") or "").capitalize()


def container_row(c: dict, trunc: bool, now: float) -> ContainerRow:
    created = c.get("Created") or 0
    labels = c.get("Labels") or {}
    command = c.get("Command") or ""
    networks = ((c.get("NetworkSettings") or {}).get("Networks") or {})
    mounts = [m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []]
    size = human_size(c.get("SizeRw") or 0)
    if c.get("SizeRootFs"):
        size += f" (virtual {human_size(c['SizeRootFs'])})"
    row = ContainerRow(
        Command=go_quote(ellipsis(command, 20) if trunc else command),
        CreatedAt=local_time(created),
        ID=short_id(c.get("Id", ""), trunc),
        Image=_image(c, trunc),
        Labels=labels_text(labels),
        LocalVolumes=str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        Mounts=",".join(ellipsis(m, 15) if trunc else m for m in mounts),
        Names=_names(c, trunc),
        Networks=",".join(sorted(networks)),
        Platform=None,  # docker 28 adds the image platform; we have none to show
        Ports=format_ports(c.get("Ports") or []),
        RunningFor=ago(created, now),
        Size=size,
        State=c.get("State") or "",
        Status=_status(c),
    )
    row.labels = labels
    return row


def ps(cli, argv: list[str]) -> int:
    opts, _ = PS.parse(argv, cli.command_path)
    fmt = opts.format or ""
    last = 1 if opts.latest and opts.last == -1 else opts.last
    query = {
        "all": 1 if opts.all else None,
        "limit": last if last > 0 else None,
        "size": 1 if opts.size or ".Size" in fmt else None,
        "filters": filters_param(opts.filter),
    }
    containers = cli.client.get("/containers/json", query) or []
    trunc = not opts.no_trunc
    if opts.quiet:
        for c in containers:
            cli.out(short_id(c.get("Id", ""), trunc))
        return 0
    if not fmt or fmt == "table":
        fmt = DEFAULT_FORMAT + ("\t{{.Size}}" if opts.size else "")
    now = time.time()
    rows = [container_row(c, trunc, now) for c in containers]
    print_rows(cli, fmt, rows, HeaderRow(HEADERS))
    return 0
