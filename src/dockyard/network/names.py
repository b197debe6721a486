"""The DNS name registry of user networks: which names (container names,
short ids, aliases) answer with which address, for network/dns.py.
Built from the endpoints and cached per network until a connect or
disconnect there (`forget`)."""
from __future__ import annotations

from typing import Callable

from dockyard.network.store import NetworkStore

# the container's current name (a rename shows at once), None if unknown
ContainerName = Callable[[str], "str | None"]


class NameRegistry:
    def __init__(self, store: NetworkStore, container_name: ContainerName | None = None):
        self.store = store
        self.container_name = container_name
        # per network id: (ip, container id, [recorded name, *aliases], [(link alias, target)])
        self._entries: dict[str, list[tuple[str, str, list[str], list[tuple[str, str]]]]] = {}

    def forget(self, network_id: str) -> None:
        """The network's endpoints changed: build its names again when asked."""
        self._entries.pop(network_id, None)

    def _dns_entries(self, network_id: str) -> list[tuple[str, str, list[str], list[tuple[str, str]]]]:
        entries = self._entries.get(network_id)
        if entries is None:
            entries = [(ep.ip, ep.container_id, [ep.name or "", *ep.alias_list], ep.link_list)
                       for ep in self.store.endpoints(network_id=network_id) if ep.ip]
            self._entries[network_id] = entries
        return entries

    def _current_name(self, container_id: str, recorded: str) -> str:
        # the container's name now (a rename shows at once), else the one recorded at connect
        name = self.container_name(container_id) if self.container_name is not None else None
        return name or recorded

    def names(self, network_id: str, asker: str | None = None) -> dict[str, list[str]]:
        """lower-case name -> addresses: container names, short ids and aliases, for the network's DNS;
        for the container at `asker`, also its legacy links' aliases (dockerd answers those only to it)."""
        names: dict[str, list[str]] = {}
        entries = self._dns_entries(network_id)
        for ip, cid, (recorded, *aliases), _links in entries:
            for n in (self._current_name(cid, recorded), cid[:12], *aliases):
                if n:
                    names.setdefault(n.lower().rstrip("."), []).append(ip)
        for ip, _cid, _names, links in entries:
            if ip != asker:
                continue
            for alias, target in links:
                target = target.strip("/")
                for tip, tcid, (trecorded, *_a), _l in entries:
                    if target in (self._current_name(tcid, trecorded), tcid) or (
                            len(target) >= 12 and tcid.startswith(target)):
                        names[alias.lower().rstrip(".")] = [tip]
                        break
        return names

    def forwards(self, network_id: str) -> bool:
        """Whether other names are forwarded to the host's resolvers: not from Internal networks."""
        rec = self.store.network_by_id(network_id)
        return rec is not None and not rec.internal

    def reverse(self, network_id: str, ip: str) -> str | None:
        for addr, cid, (recorded, *_aliases), _links in self._dns_entries(network_id):
            if addr == ip:
                return self._current_name(cid, recorded) or cid[:12]
        return None
