"""pause, unpause, update."""
from __future__ import annotations

from .. import units
from .flags import INT, STRING, Command, Flag, UsageError

_MANY = "CONTAINER [CONTAINER...]"
PAUSE = Command(_MANY, "Pause all processes within one or more containers", min_args=1,
                aliases="dockyard container pause, dockyard pause")
UNPAUSE = Command(_MANY, "Unpause all processes within one or more containers", min_args=1,
                  aliases="dockyard container unpause, dockyard unpause")
UPDATE = Command("[OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers", [
    Flag("blkio-weight", kind=INT, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    Flag("cpu-period", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("cpu-quota", kind=INT, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("cpu-rt-period", kind=INT, help="Limit the CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", kind=INT, help="Limit the CPU real-time runtime in microseconds"),
    Flag("cpu-shares", "c", INT, help="CPU shares (relative weight)"),
    Flag("cpus", kind=STRING, help="Number of CPUs"),
    Flag("cpuset-cpus", kind=STRING, help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("cpuset-mems", kind=STRING, help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("memory", "m", STRING, help="Memory limit"),
    Flag("memory-reservation", kind=STRING, help="Memory soft limit"),
    Flag("memory-swap", kind=STRING, help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Flag("pids-limit", kind=INT, help="Tune container pids limit (set -1 for unlimited)"),
    Flag("restart", kind=STRING, help="Restart policy to apply when a container exits"),
], min_args=1, aliases="dockyard container update, dockyard update")



def ram_in_bytes(text: str, flag: str) -> int:
    """go-units RAMInBytes: "64m", "64MiB", "1.5g", "512k", "100" (bytes); -1
    passes (update's `--memory-swap -1`)."""
    if text.strip() == "-1":
        return -1
    try:
        return units.ram_in_bytes(text)
    except units.SizeError as e:
        raise UsageError(f'invalid argument "{text}" for "--{flag}" flag: {e}') from None


def pause(cli, argv: list[str]) -> int:
    _, names = PAUSE.parse(argv, cli.command_path)
    return cli.each(names, lambda n: cli.client.call("POST", f"/containers/{n}/pause").close())


def unpause(cli, argv: list[str]) -> int:
    _, names = UNPAUSE.parse(argv, cli.command_path)
    return cli.each(names, lambda n: cli.client.call("POST", f"/containers/{n}/unpause").close())


def update_body(opts) -> dict:
    body: dict = {}
    ints = {"blkio_weight": "BlkioWeight", "cpu_period": "CpuPeriod", "cpu_quota": "CpuQuota",
            "cpu_rt_period": "CpuRealtimePeriod", "cpu_rt_runtime": "CpuRealtimeRuntime",
            "cpu_shares": "CpuShares", "pids_limit": "PidsLimit"}
    for attr, key in ints.items():
        v = getattr(opts, attr)
        if v is not None:
            body[key] = v
    for attr, key in {"cpuset_cpus": "CpusetCpus", "cpuset_mems": "CpusetMems"}.items():
        if getattr(opts, attr):
            body[key] = getattr(opts, attr)
    for attr, key in {"memory": "Memory", "memory_reservation": "MemoryReservation",
                      "memory_swap": "MemorySwap"}.items():
        v = getattr(opts, attr)
        if v:
            body[key] = ram_in_bytes(v, attr.replace("_", "-"))
    if opts.cpus:
        try:
            body["NanoCpus"] = int(round(float(opts.cpus) * 1e9))
        except ValueError:
            raise UsageError(f'invalid argument "{opts.cpus}" for "--cpus" flag: failed to parse '
                             f'{opts.cpus} as a rational number') from None
    if opts.restart:
        from .runconfig import parse_restart_policy
        body["RestartPolicy"] = parse_restart_policy(opts.restart)
    return body


def update(cli, argv: list[str]) -> int:
    opts, names = UPDATE.parse(argv, cli.command_path)
    body = update_body(opts)
    if not body:
        raise UsageError("you must provide one or more flags when using this command", code=1)
    warnings: list[str] = []

    def one(name: str) -> None:
        r = cli.client.post(f"/containers/{name}/update", body=body) or {}
        warnings.extend(r.get("Warnings") or [])
    code = cli.each(names, one)
    for w in warnings:
        cli.err(f"WARNING: {w}")
    return code
