"""Outbound NAT and forward rules for one bridge.

NAT lives in an nftables table dockyard owns outright, so it can be
replaced and deleted atomically without reading anyone else's rules.

Accepting forwarded traffic is different: in nftables every base chain on
a hook votes, so an accept in our table cannot override the DROP policy
dockerd (or an admin) puts on iptables' FORWARD chain. Only then do we
insert two narrow ACCEPT rules into that chain, tagged with a comment so
`remove_forward_accept` deletes exactly those. These run once per daemon start or purge,
never per container, so a subprocess is fine here.
"""
from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from ipaddress import IPv4Network, IPv6Network

from dockyard.errors import SystemError_

log = logging.getLogger(__name__)


def table_name(bridge: str) -> str:
    # Distinct per bridge so parallel test daemons never share a table.
    return "dockyard" if bridge == "dockyard0" else f"dockyard-{bridge}"


def rule_comment(bridge: str) -> str:
    return f"dockyard:{bridge}"


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemError_(f"{argv[0]} is not installed; dockyard needs it for container networking") from None
    if check and proc.returncode != 0:
        raise SystemError_(f"{shlex.join(argv)} failed: {proc.stderr.strip()}")
    return proc


def _hairpin(bridge: str, subnet: IPv4Network | IPv6Network) -> str:
    """A container reaching a published port of its own bridge through a host address: the
    reply must come back through the host's conntrack, so the source becomes the gateway."""
    return f'{_family(subnet)} saddr {subnet} oifname "{bridge}" ct status dnat masquerade'


def _family(subnet: IPv4Network | IPv6Network) -> str:
    return "ip6" if subnet.version == 6 else "ip"


def nat_ruleset(bridge: str, subnet: IPv4Network) -> str:
    table = table_name(bridge)
    # Declaring then deleting the table first makes the load idempotent and
    # atomic: one nft transaction replaces whatever an earlier start left.
    return (
        f"table ip {table}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        f"  chain postrouting {{\n"
        f"    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    ip saddr {subnet} oifname != "{bridge}" masquerade comment "{rule_comment(bridge)}"\n'
        f'    {_hairpin(bridge, subnet)}\n'
        f"  }}\n"
        f"}}\n"
    )


def network_table(owner: str, bridge: str) -> str:
    """Table of a user-defined network's bridge; carries the owning daemon's bridge name."""
    return f"{table_name(owner)}-net-{bridge}"


def network_ruleset(table: str, bridge: str, subnet: IPv4Network | IPv6Network, internal: bool,
                    isolate_from: tuple[str, ...] = (), masquerade: bool = True) -> str:
    """A user network's rules, replaced atomically like the default bridge's; an IPv6 subnet gives
    the same rules in an `ip6` table of the same name (IPv6 masquerade, isolation).

    Internal: no masquerade, and nothing forwarded in or out of the bridge.
    masquerade=False (enable_ip_masquerade=false): traffic leaves with the containers' addresses.
    (icc=false is not a rule: frames bridged port to port never reach the ip
    forward hook, so those ports are made isolated bridge ports instead.)
    """
    fam = _family(subnet)
    body = [f"table {fam} {table}", f"delete table {fam} {table}", f"table {fam} {table} {{"]
    if internal:
        body += ["  chain forward {",
                 "    type filter hook forward priority filter; policy accept;",
                 f'    iifname "{bridge}" oifname != "{bridge}" drop',
                 f'    oifname "{bridge}" iifname != "{bridge}" drop',
                 "  }"]
    else:
        # Docker's isolation between networks: nothing is forwarded between this bridge and the
        # daemon's other bridges (`isolate_from`: names or nft wildcards such as "br-*").
        body += ["  chain forward {",
                 "    type filter hook forward priority filter; policy accept;",
                 "    ct status dnat accept"]   # published ports are for everyone, as from another host
        for other in isolate_from:
            body += [f'    iifname "{bridge}" oifname "{other}" oifname != "{bridge}" drop',
                     f'    oifname "{bridge}" iifname "{other}" iifname != "{bridge}" drop']
        body += ["  }"]
        body += ["  chain postrouting {",
                 "    type nat hook postrouting priority srcnat; policy accept;"]
        if masquerade:
            body += [f'    {fam} saddr {subnet} oifname != "{bridge}" masquerade comment "{rule_comment(bridge)}"']
        body += [f"    {_hairpin(bridge, subnet)}",
                 "  }"]
    body.append("}")
    return "\n".join(body) + "\n"


def install_network(table: str, bridge: str, subnet: IPv4Network | IPv6Network, internal: bool,
                    isolate_from: tuple[str, ...] = (), masquerade: bool = True) -> None:
    from dockyard.network import nft
    nft.run(network_ruleset(table, bridge, subnet, internal, isolate_from, masquerade))


def remove_network(table: str) -> None:
    from dockyard.network import nft
    nft.delete_table(table)
    nft.delete_table(table, "ip6")


def install_nat(bridge: str, subnet: IPv4Network) -> None:
    _run(["nft", "-f", "-"], stdin=nat_ruleset(bridge, subnet))


def remove_nat(bridge: str) -> None:
    table = table_name(bridge)
    if _run(["nft", "list", "table", "ip", table], check=False).returncode == 0:
        _run(["nft", "delete", "table", "ip", table])


def _forward_rules(bridge: str) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", rule_comment(bridge)]
    return [
        ["-i", bridge, *tag, "-j", "ACCEPT"],
        ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *tag, "-j", "ACCEPT"],
        # published ports: new connections dockyard's own DNAT sent to this bridge
        ["-o", bridge, "-m", "conntrack", "--ctstate", "DNAT", *tag, "-j", "ACCEPT"],
    ]


def _iptables(tool: str = "iptables") -> str | None:
    """iptables, or ip6tables for IPv6 networks' accepts."""
    return shutil.which(tool)


def forward_policy() -> str | None:
    """Policy of iptables' filter FORWARD chain, or None if there is none."""
    return chain_policy("FORWARD")


def chain_policy(chain: str, tool: str = "iptables") -> str | None:
    """Policy of a filter-table chain, or None. Listing does not create the table (iptables-nft)."""
    ipt = _iptables(tool)
    if ipt is None:
        return None
    proc = _run([ipt, "-w", "-S", chain], check=False)
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        parts = line.split()
        if parts[:2] == ["-P", chain] and len(parts) == 3:
            return parts[2]
    return None


def install_forward_accept(bridge: str, tool: str = "iptables") -> bool:
    """Add the ACCEPT rules if FORWARD would drop our traffic; True if it did. tool="ip6tables" for
    an IPv6 network's (dockerd leaves ip6tables' FORWARD at DROP too)."""
    if chain_policy("FORWARD", tool) != "DROP":
        return False
    insert_forward_accept(bridge, tool)
    return True


def insert_forward_accept(bridge: str, tool: str = "iptables") -> None:
    """Insert the tagged ACCEPT rules at the top of FORWARD unless already there."""
    ipt = _iptables(tool)
    if ipt is None:
        raise SystemError_(f"{tool} is not installed")
    for rule in reversed(_forward_rules(bridge)):   # -I at 1 twice keeps the listed order
        if _run([ipt, "-w", "-C", "FORWARD", *rule], check=False).returncode != 0:
            _run([ipt, "-w", "-I", "FORWARD", "1", *rule])


def tagged_rules(bridge: str, tool: str = "iptables") -> list[list[str]]:
    """Every filter-table rule carrying our comment, as `-A CHAIN ...` argv lists."""
    ipt = _iptables(tool)
    if ipt is None:
        return []
    proc = _run([ipt, "-w", "-S"], check=False)
    if proc.returncode != 0:
        return []
    wanted = rule_comment(bridge)
    found = []
    for line in proc.stdout.splitlines():
        argv = shlex.split(line)
        if argv[:1] != ["-A"]:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == "--comment" and argv[i + 1] == wanted:
                found.append(argv)
                break
    return found


def remove_forward_accept(bridge: str) -> None:
    for tool in ("iptables", "ip6tables"):
        ipt = _iptables(tool)
        for argv in tagged_rules(bridge, tool):
            _run([ipt, "-w", "-D", *argv[1:]], check=False)
            log.debug("removed %s rule %s", tool, shlex.join(argv))


def enable_ip_forward() -> None:
    # Global and left on at purge: other engines on the host rely on it too.
    with open("/proc/sys/net/ipv4/ip_forward", "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1\n")
