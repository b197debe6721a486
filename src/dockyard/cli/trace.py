"""`trace CONTAINER`: the timed steps of the container's last start.

Reads `StartTrace` from container inspect (a dockyard extension):
{"Started", "TotalMs", "Ok", "Steps": [{"Step", "Ms", "Ok", "Error"}],
"FailedStep", "Error"}. A bare list of steps is accepted too.
"""
from __future__ import annotations

from .flags import STRING, Command, Flag
from .formatting import tabulate
from .template import go_float

TRACE = Command("[OPTIONS] CONTAINER", "Show the timed steps of a container's last start", [
    Flag("format", kind=STRING, help="Format output using a custom template (applied to StartTrace)"),
], min_args=1, max_args=1, aliases="dockyard container trace, dockyard trace")


def _ms(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return go_float(round(float(value), 3))
    return "-"


def _result(step: dict) -> str:
    if step.get("Ok", not step.get("Error")):
        return "ok"
    return f"error: {step['Error']}" if step.get("Error") else "error"


def trace_lines(trace: object) -> list[str]:
    """The table (and a summary line) for one StartTrace value."""
    if isinstance(trace, list):
        trace = {"Steps": trace}
    steps = trace.get("Steps") or []
    lines = []
    if trace.get("Started"):
        lines.append(f"Started: {trace['Started']}")
    rows = ["STEP\tMS\tRESULT"]
    rows += [f"{s.get('Step', '?')}\t{_ms(s.get('Ms'))}\t{_result(s)}" for s in steps]
    total = trace.get("TotalMs")
    if total is None and steps:
        total = sum(s.get("Ms") or 0 for s in steps)
    ok = trace.get("Ok", all(s.get("Ok", True) for s in steps))
    rows.append(f"total\t{_ms(total)}\t{'ok' if ok else 'error'}")
    lines += tabulate(rows)
    if not ok:
        failed = trace.get("FailedStep") or next((s.get("Step") for s in steps if not s.get("Ok", True)), "")
        detail = trace.get("Error") or ""
        lines.append(f"Failed at step {failed!r}: {detail}" if failed else f"Failed: {detail}")
    return lines


def trace(cli, argv: list[str]) -> int:
    opts, (name,) = TRACE.parse(argv, cli.command_path)
    info = cli.client.get(f"/containers/{name}/json")
    start_trace = info.get("StartTrace")
    if opts.format:
        from . import template
        cli.out(template.render(opts.format, start_trace))
        return 0
    if not start_trace:
        cli.err(f"Error: no start trace recorded for {name} (has it been started?)")
        return 1
    for line in trace_lines(start_trace):
        cli.out(line)
    return 0
