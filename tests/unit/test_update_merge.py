"""`docker update`'s merge of limits into a container's HostConfig (moby's
container.UpdateContainer with the swap limit adaptContainerSettings set)."""
from types import SimpleNamespace

import pytest

from dockyard.daemon.update import merge
from dockyard.errors import Conflict

M = 1 << 20


def _c(**hc):
    return SimpleNamespace(id="c" * 64, host_config=hc)


def test_lower_memory_keeps_the_implicit_swap_limit():
    """-m 64m without --memory-swap: dockerd stored MemorySwap=128m at create,
    so `update -m 32m` is accepted and the swap limit stays 128m."""
    hc = merge(_c(Memory=64 * M), {"Memory": 32 * M})
    assert (hc["Memory"], hc["MemorySwap"]) == (32 * M, 128 * M)
    assert merge(_c(Memory=64 * M), {"Memory": 128 * M})["Memory"] == 128 * M     # up to that limit
    with pytest.raises(Conflict, match="Memory limit should be smaller than already set memoryswap limit"):
        merge(_c(Memory=64 * M), {"Memory": 129 * M})
    # an update of something else shows the implicit limit too, as dockerd's inspect does
    assert merge(_c(Memory=64 * M), {"PidsLimit": 5})["MemorySwap"] == 128 * M


def test_explicit_swap_limits_and_no_memory_limit_as_dockerd():
    with pytest.raises(Conflict):
        merge(_c(Memory=64 * M, MemorySwap=64 * M), {"Memory": 65 * M})
    with pytest.raises(Conflict):
        merge(_c(Memory=64 * M, MemorySwap=-1), {"Memory": 32 * M})        # unlimited swap: dockerd refuses too
    with pytest.raises(Conflict):
        merge(_c(), {"Memory": 32 * M})                                    # no limit before: swap limit 0
    hc = merge(_c(Memory=64 * M, MemorySwap=64 * M), {"Memory": 96 * M, "MemorySwap": 96 * M})
    assert (hc["Memory"], hc["MemorySwap"]) == (96 * M, 96 * M)


def test_without_swap_limit_memory_is_limited_without_swap():
    """A host that cannot limit swap: moby sets MemorySwap -1 with the new
    memory limit, so an update never conflicts."""
    hc = merge(_c(), {"Memory": 32 * M}, swap_limit=False)
    assert (hc["Memory"], hc["MemorySwap"]) == (32 * M, -1)
    hc = merge(_c(Memory=64 * M, MemorySwap=-1), {"Memory": 96 * M}, swap_limit=False)
    assert (hc["Memory"], hc["MemorySwap"]) == (96 * M, -1)
