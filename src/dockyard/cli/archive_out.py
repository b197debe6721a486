"""Where an archive the daemon streams goes (`save`, `export`,
`checkpoint export`, `cp CONTAINER:PATH -`): to `-o FILE`, written beside
it and renamed into place so a failed transfer leaves no half file, or to
our stdout, which must not be a terminal."""
from __future__ import annotations

import os
import sys


def refuse_terminal(cli, output: str | None, message: str) -> bool:
    """True (and `message` printed) when the archive would go to a terminal."""
    if not output and sys.stdout.isatty():
        cli.err(message)
        return True
    return False


def write(resp, output: str | None) -> None:
    """Copy the response body to `output`, or to stdout when there is none."""
    try:
        if output:
            tmp = output + ".dockyard-tmp"
            with open(tmp, "wb") as f:
                for chunk in resp.chunks():
                    f.write(chunk)
            os.replace(tmp, output)
            return
        out = sys.stdout.buffer
        for chunk in resp.chunks():
            out.write(chunk)
        out.flush()
    finally:
        resp.close()
