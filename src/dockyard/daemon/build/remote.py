"""`ADD <url>`: the download moby's classic builder does (copy.go
downloadSource): an http(s) GET into a private directory, the file named
after the URL's last path element (else Content-Disposition's filename),
its mtime from Last-Modified. The file is then a source like any other
(SourceTree over that directory), never extracted. Blocking."""
from __future__ import annotations

import email.utils
import os
import posixpath
import re
import urllib.error
import urllib.parse
import urllib.request

from ...errors import BuildFailed

UNNAMED = "__unnamed__"
TIMEOUT = 60


def is_url(src: str) -> bool:
    """urlutil.IsURL: http:// or https://."""
    return src.startswith(("http://", "https://"))


def _filename(url: str, disposition: str | None) -> str:
    path = urllib.parse.urlsplit(url).path
    if path and not path.endswith("/"):
        name = posixpath.basename(path)
        if name:
            return name
    if disposition:
        m = re.search(r'filename="?([^";]+)"?', disposition)
        if m and not m.group(1).endswith("/"):
            return posixpath.basename(m.group(1))
    return ""


def download(url: str, dest_dir: str, into_dir: bool, cmd: str = "ADD") -> str:
    """Fetch `url` into `dest_dir`; returns the file's name there."""
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "dockyard"}),
                                      timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace").strip()
        raise BuildFailed(f"{cmd} failed: failed to GET {url} with status {e.code} {e.reason}: {body}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise BuildFailed(f'{cmd} failed: Get "{url}": {reason}') from None
    with resp:
        name = _filename(url, resp.headers.get("Content-Disposition"))
        if not name and into_dir:
            raise BuildFailed(f"{cmd} failed: cannot determine filename for source {url}")
        path = os.path.join(dest_dir, name or UNNAMED)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
        mtime = 0.0
        last = resp.headers.get("Last-Modified")
        if last:
            try:
                mtime = email.utils.parsedate_to_datetime(last).timestamp()
            except (TypeError, ValueError):
                mtime = 0.0
        os.utime(path, (mtime, mtime))
    return name or UNNAMED
