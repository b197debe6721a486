"""`save`, `history`, `image prune`."""
from __future__ import annotations

from .flags import LIST, STRING, Command, Flag

SAVE = Command("[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to STDOUT by default)", [
    Flag("output", "o", STRING, help="Write to a file, instead of STDOUT"),
    Flag("platform", kind=LIST, help="Save only the given platform(s)"),
], min_args=1, aliases="dockyard image save, dockyard save")
HISTORY = Command("[OPTIONS] IMAGE", "Show the history of an image", [
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("human", "H", kind=STRING, default="true", help="Print sizes and dates in human readable format"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
], min_args=1, max_args=1, aliases="dockyard image history, dockyard history")
PRUNE = Command("[OPTIONS]", "Remove unused images", [
    Flag("all", "a", help="Remove all unused images, not just dangling ones"),
    Flag("filter", kind=LIST, help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
], max_args=0)


def save(cli, argv: list[str]) -> int:
    opts, names = SAVE.parse(argv, cli.command_path)
    from . import archive_out
    if archive_out.refuse_terminal(cli, opts.output, "Cowardly refusing to save to a terminal. "
                                   "Use the -o flag or redirect"):
        return 1
    archive_out.write(cli.client.call("GET", "/images/get", {"names": names}), opts.output)
    return 0


def history(cli, argv: list[str]) -> int:
    import time

    from .formatting import ago, human_size, short_id
    opts, args = HISTORY.parse(argv, cli.command_path)
    rows = cli.client.get(f"/images/{args[0]}/history") or []
    if opts.quiet:
        for r in rows:
            cli.out(r["Id"] if opts.no_trunc or r["Id"] == "<missing>" else short_id(r["Id"]))
        return 0
    if opts.format:
        from .template import render as tmpl
        for r in rows:
            cli.out(tmpl(opts.format, {"ID": r["Id"], "CreatedBy": r.get("CreatedBy", ""),
                                       "Comment": r.get("Comment", ""), "Size": human_size(r.get("Size", 0)),
                                       "CreatedSince": ago(r.get("Created", 0), time.time())}))
        return 0
    table = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    for r in rows:
        iid = r["Id"] if opts.no_trunc or r["Id"] == "<missing>" else short_id(r["Id"])
        by = r.get("CreatedBy", "")
        if not opts.no_trunc and len(by) > 45:
            by = by[:44] + "…"
        table.append((iid, ago(r.get("Created", 0), time.time()), by, human_size(r.get("Size", 0)),
                      r.get("Comment", "")))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        cli.out("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def prune(cli, argv: list[str]) -> int:
    from .filters import filters_param
    from .prune import confirm, image_lines, print_deleted, print_reclaimed
    opts, _ = PRUNE.parse(argv, cli.command_path)
    what = "all images without at least one container associated to them" if opts.all else "all dangling images"
    if not opts.force and not confirm(f"WARNING! This will remove {what}."):
        return 0
    filters = list(opts.filter or [])
    if opts.all:
        filters.append("dangling=false")
    report = cli.client.post("/images/prune", {"filters": filters_param(filters)}) or {}
    print_deleted(cli, "Images", image_lines(report.get("ImagesDeleted") or []))
    print_reclaimed(cli, report.get("SpaceReclaimed"))
    return 0
