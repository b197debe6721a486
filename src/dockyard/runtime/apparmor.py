"""AppArmor, as Docker does it: where the host has AppArmor enabled,
containers run under `docker-default` (moby's profiles/apparmor template,
loaded once per daemon with apparmor_parser), `--privileged` runs
unconfined, `--security-opt apparmor=NAME` picks a loaded profile. Where
the host has no AppArmor, nothing is applied and the daemon logs a notice
once (Docker silently runs unconfined there)."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import Iterable

log = logging.getLogger("dockyard.apparmor")

DEFAULT_PROFILE = "docker-default"

TEMPLATE = """#include <tunables/global>

profile docker-default flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,
  # the host and the engine may signal container processes
  signal (receive) peer=unconfined,
  # container processes may signal each other
  signal (send,receive) peer=docker-default,

  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  deny mount,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,

  ptrace (trace,read,tracedby,readby) peer=docker-default,
}
"""

_state: dict = {}


def host_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            enabled = f.read().strip() == "Y"
    except OSError:
        enabled = False
    return enabled and os.path.isdir("/sys/kernel/security/apparmor") and bool(shutil.which("apparmor_parser"))


def choose(security_opts: Iterable[str] | None, privileged: bool, enabled: bool) -> str | None:
    """The profile a container runs under (None: no AppArmor at all)."""
    if not enabled:
        return None
    wanted = None
    for opt in security_opts or ():
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "apparmor":
            wanted = value
    if wanted:
        return wanted
    return "unconfined" if privileged else DEFAULT_PROFILE


def profile_for(security_opts: Iterable[str] | None, privileged: bool, state_dir: str) -> str | None:
    """What to put in the spec's process.apparmorProfile, loading
    docker-default the first time it is needed (one apparmor_parser run per
    daemon, never per start)."""
    if "enabled" not in _state:
        _state["enabled"] = host_enabled()
        if not _state["enabled"]:
            log.info("AppArmor is not enabled on this host: containers run without an AppArmor profile")
    name = choose(security_opts, privileged, _state["enabled"])
    if name == DEFAULT_PROFILE and not _state.get("loaded"):
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(state_dir, DEFAULT_PROFILE)
        with open(path, "w") as f:
            f.write(TEMPLATE)
        r = subprocess.run(["apparmor_parser", "-Kr", path], capture_output=True, text=True)
        if r.returncode != 0:
            log.warning("loading the docker-default AppArmor profile failed: %s; containers run "
                        "without one", r.stderr.strip())
            _state["enabled"] = False
            return None
        _state["loaded"] = True
    return name
