"""Print a list (ps, images) as docker's table, a custom template or JSON lines.

`--format 'table {{.ID}}\t{{.Names}}'` gives a header row and aligned
columns; without `table` each row is the template's output as is. The
header is the same template run on a row of column titles.
"""
from __future__ import annotations

from . import template
from .formatting import tabulate


class Row(dict):
    """One row's fields (all strings, as docker's formatter exposes them)."""


def labels_text(labels: dict[str, str] | None) -> str:
    """A `{{.Labels}}` column: `a=1,b=2`, sorted by key."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def expand_format(fmt: str) -> tuple[bool, str]:
    """(is table, template) — docker turns `\\t`/`\\n` typed in a shell into real ones."""
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt.startswith("table"):
        return True, fmt[len("table"):].strip(" ")
    return False, fmt


def json_line(row: Row) -> str:
    """`--format json`: the row marshalled like Go does (sorted keys, HTML-safe)."""
    import json
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def print_rows(cli, fmt: str, rows: list[Row], header: Row) -> None:
    if fmt == "json":
        for row in rows:
            cli.out(json_line(row))
        return
    is_table, text = expand_format(fmt)
    tmpl = template.parse(text)
    lines = [tmpl.execute(row) for row in rows]
    if not is_table:
        for line in lines:
            cli.out(line)
        return
    for line in tabulate("\n".join([tmpl.execute(header)] + lines).split("\n")):
        cli.out(line)
