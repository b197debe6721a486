"""Choosing subnets nobody asked for: the default bridge's when the operator
gave no --bip, and user networks' created without --subnet.

dockerd's default address pools (--default-address-pool base=CIDR,size=N,
daemon.json "default-address-pools") replace Docker's default IPv4 candidates
when given; their IPv6 entries are where `--ipv6` networks without a v6 subnet
get theirs (without one: a random ULA /64, usernets.pick_ula). As moby 28's
defaultipam: the bases sorted, a base overlapping an earlier one dropped, the
first subnet of `size` free of everything in use taken. Candidates are walked
lazily (a /8 at size 24 is 65536 of them) and past a taken range in one step."""
from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Iterable, Iterator, Sequence

from dockyard.errors import InvalidParameter, Unavailable

Network = IPv4Network | IPv6Network

# Ranges other engines on the same host claim even before they start:
# docker0 and podman's default network.
RESERVED = (IPv4Network("172.17.0.0/16"), IPv4Network("10.88.0.0/16"))

# Docker's default address pools (172.17-31/16 and 192.168/16), in its order,
# with 192.168 cut into /24s so a home LAN there only costs one candidate.
CANDIDATES = tuple(
    [IPv4Network(f"172.{n}.0.0/16") for n in range(18, 32)]
    + [IPv4Network(f"192.168.{n}.0/24") for n in range(256)]
)

# moby 28 ipamapi.ErrNoMoreSubnets (errdefs.InvalidParameter)
EXHAUSTED = "all predefined address pools have been fully subnetted"


class PoolError(ValueError):
    """A default address pool refused, in dockerd's words."""


@dataclass(frozen=True)
class Pool:
    """One default address pool: `base` cut into subnets of prefix length `size`."""
    base: Network | None     # None: not given (refused by check)
    size: int

    def __str__(self) -> str:   # moby's %v of its *NetworkToSplit, as its errors show it
        return f"&{{{self.base or 'invalid Prefix'} {self.size}}}"

    def subnets(self, taken: Sequence[Network] = ()) -> Iterator[Network]:
        """The base's subnets of `size` in order, lazily, without those overlapping `taken`
        (other families ignored): past a taken range in one step, not one subnet at a time."""
        base, step = self.base, 1 << (self.base.max_prefixlen - self.size)
        cls = type(base)
        blockers = sorted((t for t in taken if t.version == base.version and t.overlaps(base)),
                          key=lambda t: int(t.network_address))
        addr, end = int(base.network_address), int(base.broadcast_address)
        i = 0
        while addr <= end:
            last = addr + step - 1
            while i < len(blockers) and int(blockers[i].broadcast_address) < addr:
                i += 1
            # blockers are sorted by start: only the first not yet passed can overlap
            hit = blockers[i] if i < len(blockers) and int(blockers[i].network_address) <= last else None
            if hit is None:
                yield cls((addr, self.size))
                addr += step
            else:   # the first subnet starting after the blocker's last address
                addr = ((int(hit.broadcast_address) + 1 - int(base.network_address) + step - 1)
                        // step) * step + int(base.network_address)


def check(pools: Sequence[Pool]) -> None:
    """moby's splitByIPFamily: a size the base can be cut into."""
    for i, p in enumerate(pools):
        if p.base is None or p.size <= 0 or p.size > p.base.max_prefixlen:
            raise PoolError(f"network at index {i} ({p}) is not in canonical form")
        if p.base.prefixlen > p.size:
            raise PoolError(f"network at index {i} ({p}) has a smaller prefix (/{p.base.prefixlen}) "
                            f"than the target size of that pool (/{p.size})")


def _base(text: Any) -> Network:
    """A base as netip.ParsePrefix takes it: an address and a prefix length."""
    try:
        if "/" not in str(text):
            raise ValueError("no '/'")
        return ipaddress.ip_network(str(text).strip(), strict=False)   # moby masks host bits
    except ValueError as e:
        raise PoolError(f'invalid base prefix "{text}": {e}') from None


def parse_flag(value: str) -> Pool:
    """--default-address-pool base=10.10.0.0/16,size=24 (moby's PoolsOpt.Set: csv fields,
    keys case-insensitive)."""
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as e:
        raise PoolError(str(e) or "empty value") from None
    base: Network | None = None
    size = 0
    for field in fields:
        key, sep, val = field.lower().partition("=")
        if not sep:
            raise PoolError(f"invalid field '{field}' must be a key=value pair")
        if key == "base":
            base = _base(val)
        elif key == "size":
            try:
                size = int(val, 10)
            except ValueError:
                raise PoolError(f'invalid size value: "{value}" (must be integer)') from None
        else:
            raise PoolError(f"unexpected key '{key}' in '{field}'")
    return Pool(base, size)


def parse_json(entry: dict) -> Pool:
    """One daemon.json "default-address-pools" entry, {"base": CIDR, "size": N}. Keys match
    case-insensitively as Go's encoding/json does; an unknown key is refused (dockerd ignores
    it, and a misspelt "size" then fails as size 0)."""
    known = {"base": None, "size": 0}
    for k, v in entry.items():
        if k.lower() not in known:
            raise PoolError(f"unknown field {k!r} (want \"base\" and \"size\")")
        known[k.lower()] = v
    size = known["size"]
    if not isinstance(size, int) or isinstance(size, bool):
        raise PoolError(f"invalid size value: {size!r} (must be integer)")
    return Pool(None if known["base"] is None else _base(known["base"]), size)


def parse(values: Iterable[str | dict]) -> tuple[Pool, ...]:
    """Flag strings or daemon.json objects, checked (PoolError)."""
    pools = tuple(parse_flag(v) if isinstance(v, str) else parse_json(v) for v in values)
    check(pools)
    return pools


def ordered(pools: Iterable[Pool], version: int) -> list[Pool]:
    """One family's pools as moby's newAddrSpace keeps them: sorted by base (address, then
    prefix length), a base overlapping the one kept before it dropped."""
    mine = sorted((p for p in pools if p.base.version == version),
                  key=lambda p: (int(p.base.network_address), p.base.prefixlen))
    kept: list[Pool] = []
    for p in mine:
        if kept and kept[-1].base.overlaps(p.base):
            continue
        kept.append(p)
    return kept


def pick_from_pools(pools: Iterable[Pool], in_use: Iterable[Network], version: int = 4) -> Network:
    """The first subnet of the family's pools that overlaps nothing in use (moby 28's
    allocatePredefinedPool); none left: moby's InvalidParameter."""
    taken = [n for n in in_use if n.version == version and n.prefixlen > 0]   # a default route overlaps all
    for pool in ordered(pools, version):
        for subnet in pool.subnets(taken):
            return subnet
    raise InvalidParameter(EXHAUSTED)


def pick_free_subnet(in_use: Iterable[IPv4Network | str],
                     candidates: Iterable[IPv4Network] = CANDIDATES) -> IPv4Network:
    """The first candidate overlapping nothing in use and nothing reserved."""
    taken = [ipaddress.IPv4Network(n, strict=False) for n in in_use]
    taken = [n for n in taken if n.prefixlen > 0] + list(RESERVED)   # a default route overlaps everything
    for candidate in candidates:
        if not any(candidate.overlaps(n) for n in taken):
            return candidate
    raise Unavailable("could not find a free subnet for the default bridge network; set --bip")
