"""`images`, `tag` and `rmi`."""
from __future__ import annotations

import time

from .filters import filters_param
from .flags import LIST, STRING, Command, Flag
from .formatting import ago, human_size, local_time, short_id
from .listing import Row, print_rows

IMAGES = Command("[OPTIONS] [REPOSITORY[:TAG]]", "List images", [
    Flag("all", "a", help="Show all images (default hides intermediate images)"),
    Flag("digests", help="Show digests"),
    Flag("filter", "f", LIST, help="Filter output based on conditions provided"),
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
], max_args=1, aliases="dockyard image ls, dockyard image list, dockyard images")
TAG = Command("SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
              min_args=2, max_args=2, aliases="dockyard image tag, dockyard tag")
RMI = Command("[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", [
    Flag("force", "f", help="Force removal of the image"),
    Flag("no-prune", help="Do not delete untagged parents"),
], min_args=1, aliases="dockyard image rm, dockyard image remove, dockyard rmi")

DEFAULT_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGESTS_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


def split_reference(ref: str) -> tuple[str, str]:
    """`repo:tag` → (repo, tag); a port in a registry host is not a tag."""
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, ""
    return repo, tag


def _rows_for(image: dict, trunc: bool, digests: bool, now: float) -> list[Row]:
    """One row per tag; an untagged image shows once (by digest repository if any).

    The Digest column is only looked up with --digests, as docker does."""
    repo_digests = image.get("RepoDigests") or []
    pairs = []
    for ref in image.get("RepoTags") or []:
        if ref == "<none>:<none>":
            continue
        repo, tag = split_reference(ref)
        digest = "<none>"
        if digests:
            digest = next((d.split("@", 1)[1] for d in repo_digests if d.split("@", 1)[0] == repo), "<none>")
        pairs.append((repo, tag, digest))
    if not pairs:
        for ref in repo_digests:
            repo, _, digest = ref.partition("@")
            pairs.append((repo, "<none>", digest if digests else ""))
        if not pairs:
            pairs.append(("<none>", "<none>", "<none>"))
    created = image.get("Created") or 0
    size = image.get("Size") or 0
    shared = image.get("SharedSize", -1)
    containers = image.get("Containers", -1)
    common = dict(
        Containers=str(containers) if containers >= 0 else "N/A",
        CreatedAt=local_time(created),
        CreatedSince=ago(created, now) if created else "N/A",
        ID=short_id(image.get("Id", ""), trunc),
        SharedSize=human_size(shared) if shared >= 0 else "N/A",
        Size=human_size(size),
        UniqueSize=human_size(size - shared) if shared >= 0 else "N/A",
        VirtualSize=human_size(image.get("VirtualSize") or size, 4),
    )
    return [Row(Digest=digest, Repository=repo, Tag=tag, **common) for repo, tag, digest in pairs]


def images(cli, argv: list[str]) -> int:
    opts, args = IMAGES.parse(argv, cli.command_path)
    extra = {"reference": {args[0]: True}} if args else None
    query = {"all": 1 if opts.all else None, "filters": filters_param(opts.filter, extra)}
    found = cli.client.get("/images/json", query) or []
    trunc = not opts.no_trunc
    now = time.time()
    rows = [row for image in found for row in _rows_for(image, trunc, opts.digests, now)]
    if opts.quiet:
        for row in rows:  # one per row, as docker does (an image with two tags shows twice)
            cli.out(row["ID"])
        return 0
    fmt = opts.format or ""
    if not fmt or fmt == "table":
        fmt = DIGESTS_FORMAT if opts.digests else DEFAULT_FORMAT
    print_rows(cli, fmt, rows, Row(HEADERS))
    return 0


def tag(cli, argv: list[str]) -> int:
    _, (source, target) = TAG.parse(argv, cli.command_path)
    if "@" in target:
        cli.err("Error: refusing to create a tag with a digest reference")
        return 1
    repo, tag_name = split_reference(target)
    cli.client.call("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag_name or "latest"}).close()
    return 0


def rmi(cli, argv: list[str]) -> int:
    opts, names = RMI.parse(argv, cli.command_path)
    query = {"force": 1 if opts.force else None, "noprune": 1 if opts.no_prune else None}

    def remove(name: str) -> str:
        report = cli.client.json("DELETE", f"/images/{name}", query) or []
        return "\n".join(f"{key}: {item[key]}" for item in report for key in ("Untagged", "Deleted")
                         if item.get(key))
    return cli.each(names, remove)
