"""What the API shows of images: inspect, the list (with its filters) and
history, in Docker 28's shapes. Reads only."""
from __future__ import annotations

from ..errors import InvalidParameter
from . import filters as flt
from .distribution import DistributionStore
from .lookup import ImageLookup
from .reference import parse
from .times import ZERO_TIME, format_ns, parse_filter_time, parse_ns


def until_filter(f: dict) -> int | None:
    """The `until` filter in ns; a bad value is a 400 as in moby, not a 500."""
    if not f.get("until"):
        return None
    try:
        return parse_filter_time(f["until"][-1])
    except ValueError as e:
        raise InvalidParameter(f"invalid value for 'until' filter: {e}") from None


class ImageViews:
    def __init__(self, lookup: ImageLookup, dist: DistributionStore):
        self.lookup = lookup
        self.store = lookup.store
        self.layers = lookup.layers
        self.dist = dist

    def inspect(self, ref: str) -> dict:
        """GET /images/{name}/json."""
        img = self.lookup.resolve(ref)
        c = img.config
        out = {
            "Id": img.id,
            "RepoTags": self.lookup.repo_tags(img.id),
            "RepoDigests": [parse(r).familiar() for r in self.dist.repo_digests(img.id)],
            "Parent": self.dist.parent(img.id) or "",
            "Comment": c.get("comment", ""),
        }
        if c.get("created"):
            out["Created"] = format_ns(img.created_ns)
        out.update({
            "DockerVersion": c.get("docker_version", ""),
            "Author": c.get("author", ""),
            "Config": _present(c.get("config") or {}),
            "Architecture": c.get("architecture", ""),
        })
        if c.get("variant"):
            out["Variant"] = c["variant"]
        out["Os"] = c.get("os", "")
        if c.get("os.version"):
            out["OsVersion"] = c["os.version"]
        lowers = self.lookup.lower_dirs(img.id)
        data = {"UpperDir": lowers[0]}
        if len(lowers) > 1:
            data["LowerDir"] = ":".join(lowers[1:])
        out.update({
            "Size": img.size,
            "GraphDriver": {"Name": "overlay2", "Data": data},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids},
            "Metadata": {"LastTagTime": img.last_tag_time or ZERO_TIME},
        })
        # Deprecated; dockerd 26+ leaves them out from API 1.45 on. Kept at every version on purpose:
        # Debian's docker-compose 1.29 negotiates the newest API and reads ContainerConfig whenever
        # it recreates a container (a KeyError without it).
        out["Container"] = c.get("container", "")
        out["ContainerConfig"] = go_container_config(c.get("container_config") or {})
        return out

    def list(self, all: bool = False, filters: dict | None = None) -> list[dict]:
        """GET /images/json, as moby's Images(): an image without tags or
        digests that is the parent of another (a build's step image, a
        commit's base) is an intermediate, listed only with `all`;
        `dangling=true` lists only images without children (moby's Heads)."""
        f = flt.normalize(filters, flt.LIST_FILTERS)
        dangling = flt.bool_filter(f, "dangling")
        before = self._filter_time(f, "before")
        since = self._filter_time(f, "since")
        until = until_filter(f)
        tags = self.store.all_tags()
        digests = self.dist.all_repo_digests()
        parents = self.dist.parents()
        with_children = set(parents.values())
        out = []
        for img in self.lookup.all():
            if dangling and img.id in with_children:
                continue
            if before is not None and not img.created_ns < before:
                continue
            if since is not None and not img.created_ns > since:
                continue
            if until is not None and not img.created_ns < until:
                continue
            labels = img.labels
            if "label" in f and not flt.labels_match(f["label"], labels):
                continue
            refs = [parse(r) for r in tags.get(img.id, [])]
            if "reference" in f:
                refs = [r for r in refs if any(flt.reference_match(p, r) for p in f["reference"])]
            if not refs and not ("reference" not in f and digests.get(img.id)):
                if not all and img.id in with_children:
                    continue           # an intermediate image
                if dangling is False or "reference" in f:
                    continue
            elif dangling:
                continue           # a digest reference (pulled by digest) is not dangling either
            out.append({
                "Containers": -1,
                "Created": img.created_ns // 1_000_000_000,
                "Id": img.id,
                "Labels": labels,
                "ParentId": parents.get(img.id, ""),
                "RepoDigests": [parse(r).familiar() for r in digests.get(img.id, [])],
                "RepoTags": [r.familiar() for r in refs],
                "SharedSize": -1,
                "Size": img.size,
            })
        return out

    def _filter_time(self, f: dict[str, list[str]], key: str) -> int | None:
        if not f.get(key):
            return None
        return self.lookup.resolve(f[key][-1]).created_ns     # the last one wins, as in moby

    def history(self, ref: str) -> list[dict]:
        """GET /images/{name}/history: newest first; only the newest entry
        names the image, the rest are <missing> (no parent images here)."""
        img = self.lookup.resolve(ref)
        chains = self.store.chain_ids(img.id)
        sizes = self.layers.sizes(chains)
        hist = img.config.get("history") or [{"created": img.config.get("created")} for _ in chains]
        out, layer = [], 0
        for h in hist:
            size = 0
            if not h.get("empty_layer") and layer < len(chains):
                size = sizes.get(chains[layer], 0)
                layer += 1
            out.append({
                "Id": "<missing>",
                "Created": _unix(h.get("created")),
                "CreatedBy": h.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": h.get("comment", ""),
            })
        out.reverse()
        if out:
            out[0]["Id"] = img.id
            out[0]["Tags"] = self.lookup.repo_tags(img.id) or None
        # a committed image's older entries belong to its parent: name them, as moby does
        parent, seen = self.dist.parent(img.id), {img.id}
        while parent and parent not in seen:
            seen.add(parent)
            pimg = self.lookup.get(parent)
            if pimg is None:
                break
            n = len(pimg.config.get("history") or pimg.diff_ids)
            if 0 < n <= len(out):
                out[len(out) - n]["Id"] = parent
                out[len(out) - n]["Tags"] = self.lookup.repo_tags(parent) or None
            parent = self.dist.parent(parent)
        return out


# An image's config as moby 28 holds it (dockerspec.DockerOCIImageConfig), in
# Go's field order: what the config of a pulled, loaded, imported, committed or
# built image shows; any other key an old config carries (Hostname, Image ...)
# is not part of it.
OCI_CONFIG_FIELDS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels",
                     "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell")
# moby 28's image inspect for API < 1.50: a container.Config (Go's field order),
# its fields without omitempty always there
_CONTAINER_CONFIG = (("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
                     ("AttachStdout", False), ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False),
                     ("OpenStdin", False), ("StdinOnce", False), ("Env", None), ("Cmd", None),
                     ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
                     ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None), ("Labels", None),
                     ("StopSignal", None), ("Shell", None))
_OMITEMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"}
# ... and for API 1.50 and 1.51 (moby 28.3+, moby#50134): these always there
_ALWAYS_1_50 = (("User", ""), ("Env", None), ("Entrypoint", None), ("Cmd", None), ("Volumes", None),
                ("WorkingDir", ""), ("Labels", None), ("OnBuild", None))


# moby's container.Config as Go marshals it: these fields have no omitempty, so they are always there
_GO_CONFIG_FIELDS = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                     "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
                     "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                     "OnBuild": None, "Labels": None}


def go_container_config(cfg: dict) -> dict:
    """An image's container_config as dockerd shows it: every field without omitempty, set or not
    (an imported or BuildKit-built image has an empty one), then the set omitempty ones."""
    out = dict(_GO_CONFIG_FIELDS)
    out.update({k: v for k, v in cfg.items() if k in _GO_CONFIG_FIELDS or v not in (None, "", [], {}, False, 0)})
    return out


def _present(cfg: dict) -> dict:
    """The config as moby 28 shows it on the current API: OCI fields, unset ones left out."""
    return {k: cfg[k] for k in OCI_CONFIG_FIELDS if cfg.get(k) not in (None, "", [], {}, False)}


def config_for_api(cfg: dict, version: tuple[int, int]) -> dict:
    """An inspect's `Config` (as `inspect` gives it) in the shape moby 28
    answers on API `version`: a container.Config with its 17 always-present
    fields below 1.50; the OCI config with 8 always-present fields on 1.50–1.51."""
    if version < (1, 50):
        out = {}
        for k, zero in _CONTAINER_CONFIG:
            if k in cfg:
                out[k] = cfg[k]
            elif k not in _OMITEMPTY:
                out[k] = zero
        return out
    out = {k: cfg.get(k, zero) for k, zero in _ALWAYS_1_50}
    out.update(cfg)
    return {k: out[k] for k in OCI_CONFIG_FIELDS if k in out}


def _unix(created: str | None) -> int:
    try:
        return parse_ns(created or "") // 1_000_000_000
    except ValueError:
        return 0
