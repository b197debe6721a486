"""Restart policies and Docker's backoff: 100 ms doubling to 1 min, back
to 100 ms once a run lasted 10 s or more."""
from __future__ import annotations

from ..errors import InvalidParameter

INITIAL = 0.1
MAXIMUM = 60.0
RESET_AFTER = 10.0
POLICIES = ("", "no", "always", "on-failure", "unless-stopped")


def validate(policy: dict | None) -> dict:
    policy = policy or {}
    name = policy.get("Name") or "no"
    n = int(policy.get("MaximumRetryCount") or 0)
    if name not in POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                               "'on-failure', or 'unless-stopped'")
    if n < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if n and name != "on-failure":
        raise InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    return {"Name": name, "MaximumRetryCount": n}


def should_restart(policy: dict, exit_code: int, restart_count: int, manually_stopped: bool) -> bool:
    name = policy.get("Name") or "no"
    if manually_stopped or name in ("", "no"):
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


class Backoff:
    def __init__(self) -> None:
        self.delay = 0.0

    def next(self, ran_for: float) -> float:
        """Delay before the next restart, given how long the last run lasted."""
        if ran_for >= RESET_AFTER or self.delay == 0.0:
            self.delay = INITIAL
        else:
            self.delay = min(self.delay * 2, MAXIMUM)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0
