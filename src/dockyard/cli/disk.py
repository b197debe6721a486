"""`system df` and `system prune`, as docker prints them."""
from __future__ import annotations

from .filters import filters_param
from .flags import LIST, STRING, Command, Flag
from .formatting import human_size
from .prune import confirm, image_lines, print_deleted, print_reclaimed

DF = Command("[OPTIONS]", "Show docker disk usage", [
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("verbose", "v", help="Show detailed information on space usage"),
], max_args=0, aliases="dockyard system df")
PRUNE = Command("[OPTIONS]", "Remove unused data", [
    Flag("all", "a", help="Remove all unused images not just dangling ones"),
    Flag("filter", kind=LIST, help='Provide filter values (e.g. "label=<key>=<value>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
    Flag("volumes", help="Prune anonymous volumes"),
], max_args=0, aliases="dockyard system prune")

DF_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


def _pct(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable, 4)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable, 4)


def df_rows(du: dict) -> list[dict]:
    """docker's four summary rows (cli/command/formatter/disk_usage.go)."""
    images = du.get("Images") or []
    layers = du.get("LayersSize") or 0
    used = sum(i["Size"] - i["SharedSize"] for i in images
               if i.get("Containers") and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1)
    containers = du.get("Containers") or []
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    c_free = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") not in ("running", "paused"))
    volumes = du.get("Volumes") or []
    v_size = sum(max(v.get("UsageData", {}).get("Size", 0), 0) for v in volumes)
    v_free = sum(max(v.get("UsageData", {}).get("Size", 0), 0) for v in volumes
                 if v.get("UsageData", {}).get("RefCount", 0) == 0)
    cache = du.get("BuildCache") or []
    b_size = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    b_free = sum(b.get("Size", 0) for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if i.get("Containers"))),
         "Size": human_size(layers, 4), "Reclaimable": _pct(layers - used, layers)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(sum(1 for c in containers if c.get("State") in ("running", "paused"))),
         "Size": human_size(c_size, 4), "Reclaimable": _pct(c_free, c_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(sum(1 for v in volumes if v.get("UsageData", {}).get("RefCount", 0) > 0)),
         "Size": human_size(v_size, 4), "Reclaimable": _pct(v_free, v_size)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for b in cache if b.get("InUse"))),
         "Size": human_size(b_size, 4), "Reclaimable": human_size(b_free, 4)},
    ]


def df(cli, argv: list[str]) -> int:
    opts, _ = DF.parse(argv, cli.command_path)
    du = cli.client.get("/system/df") or {}
    from .listing import Row, print_rows
    rows = [Row(r) for r in df_rows(du)]
    if opts.verbose and not opts.format:
        _verbose(cli, du)
        return 0
    print_rows(cli, opts.format or DF_FORMAT, rows, Row(DF_HEADERS))
    return 0


def _verbose(cli, du: dict) -> None:
    from .formatting import short_id, tabulate
    cli.out("Images space usage:\n")
    from .formatting import ago
    lines = ["REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS"]
    for i in du.get("Images") or []:
        for tag in i.get("RepoTags") or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            lines.append(f"{repo}\t{t}\t{short_id(i['Id'])}\t{ago(i['Created'])}\t{human_size(i['Size'], 4)}\t"
                         f"{human_size(i['SharedSize'], 4)}\t{human_size(i['Size'] - i['SharedSize'], 4)}\t"
                         f"{i['Containers']}")
    for line in tabulate(lines):
        cli.out(line)
    cli.out("\nContainers space usage:\n")
    lines = ["CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES"]
    for c in du.get("Containers") or []:
        vols = sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")
        lines.append(f"{short_id(c['Id'])}\t{c['Image']}\t\"{c['Command'][:20]}\"\t{vols}\t"
                     f"{human_size(c.get('SizeRw') or 0, 4)}\t{ago(c['Created'])}\t{c['Status']}\t"
                     f"{c['Names'][0].lstrip('/')}")
    for line in tabulate(lines):
        cli.out(line)
    cli.out("\nLocal Volumes space usage:\n")
    lines = ["VOLUME NAME\tLINKS\tSIZE"]
    for v in du.get("Volumes") or []:
        u = v.get("UsageData") or {}
        lines.append(f"{v.get('Name')}\t{u.get('RefCount', 0)}\t{human_size(max(u.get('Size', 0), 0), 4)}")
    for line in tabulate(lines):
        cli.out(line)
    cache = du.get("BuildCache") or []
    cli.out(f"\nBuild cache usage: {human_size(sum(b.get('Size', 0) for b in cache), 4)}\n")
    lines = ["CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"]
    for b in cache:
        lines.append(f"{b.get('ID', '')[:12]}\t{b.get('Type', '')}\t{human_size(b.get('Size', 0), 4)}\t"
                     f"{_since(b.get('CreatedAt'))}\t{_since(b.get('LastUsedAt'))}\t{b.get('UsageCount', 0)}\t"
                     f"{str(bool(b.get('Shared'))).lower()}")
    for line in tabulate(lines):
        cli.out(line)


def _since(rfc3339: str | None) -> str:
    """A BuildCache record's time as docker's df -v shows it ("5 minutes ago")."""
    from ..timestamps import parse
    from .formatting import ago
    if not rfc3339:
        return ""
    try:
        return ago(parse(rfc3339))
    except ValueError:
        return ""


def _confirm(all_images: bool, volumes: bool) -> bool:
    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them" if all_images
                 else "  - all dangling images")
    lines.append("  - unused build cache" if not all_images else "  - all build cache")
    return confirm("\n".join(lines) + "\n")


def prune(cli, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv, cli.command_path)
    if not opts.force and not _confirm(opts.all, opts.volumes):
        return 0
    filters = filters_param(opts.filter)
    total = 0
    c = cli.client.post("/containers/prune", {"filters": filters}) or {}
    total += c.get("SpaceReclaimed") or 0
    print_deleted(cli, "Containers", c.get("ContainersDeleted") or [])
    n = cli.client.post("/networks/prune", {"filters": filters}) or {}
    print_deleted(cli, "Networks", n.get("NetworksDeleted") or [])
    if opts.volumes:
        v = cli.client.post("/volumes/prune", {"filters": filters}) or {}
        total += v.get("SpaceReclaimed") or 0
        print_deleted(cli, "Volumes", v.get("VolumesDeleted") or [])
    extra = None if opts.all else {"dangling": {"true": True}}
    i = cli.client.post("/images/prune", {"filters": filters_param(opts.filter, extra)}) or {}
    total += i.get("SpaceReclaimed") or 0
    print_deleted(cli, "Images", image_lines(i.get("ImagesDeleted") or []))
    b = cli.client.post("/build/prune", {"all": "1" if opts.all else None}) or {}
    total += b.get("SpaceReclaimed") or 0
    print_reclaimed(cli, total)
    return 0
