"""The DNS name registry of user networks: which names (container names,
short ids, aliases, name.network) answer with which address, for each
container's embedded resolver (network/resolver.py): the names on the
user networks that container is on. Built from the endpoints at a network's
first question, then kept in step by each connect and disconnect there (no
read of all its endpoints again after every start); `forget` drops a network's."""
from __future__ import annotations

import threading
from typing import Callable

from dockyard.network.endpoint import Endpoint
from dockyard.network.store import NetworkStore

NO_NAMES = ("bridge", "none")   # Docker's default bridge has no DNS names

# the container's current name (a rename shows at once), None if unknown
ContainerName = Callable[[str], "str | None"]


class NameRegistry:
    def __init__(self, store: NetworkStore, container_name: ContainerName | None = None):
        self.store = store
        self.container_name = container_name
        # per network id: (ip, container id, [recorded name, *aliases], [(link alias, target)])
        # (a list is replaced, never changed: the resolver reads it on the loop while workers connect)
        self._entries: dict[str, list[tuple[str, str, list[str], list[tuple[str, str]]]]] = {}
        self._lock = threading.Lock()

    def forget(self, network_id: str) -> None:
        """The network's endpoints changed: build its names again when asked."""
        with self._lock:
            self._entries.pop(network_id, None)

    @staticmethod
    def _rows(ep: Endpoint) -> list[tuple[str, str, list[str], list[tuple[str, str]]]]:
        return [(ip, ep.container_id, [ep.name or "", *ep.alias_list], ep.link_list) for ip in (ep.ip, ep.ip6) if ip]

    def connected(self, ep: Endpoint) -> None:
        """ep (recorded already) joined its network: its names, if the network's are built."""
        with self._lock:
            entries = self._entries.get(ep.network_id)
            if entries is not None:
                self._entries[ep.network_id] = [e for e in entries if e[1] != ep.container_id] + self._rows(ep)

    def disconnected(self, container_id: str, network_id: str) -> None:
        with self._lock:
            entries = self._entries.get(network_id)
            if entries is not None:
                self._entries[network_id] = [e for e in entries if e[1] != container_id]

    def _dns_entries(self, network_id: str) -> list[tuple[str, str, list[str], list[tuple[str, str]]]]:
        entries = self._entries.get(network_id)
        if entries is None:
            with self._lock:   # a connect meanwhile waits, then adds to what is read here
                entries = self._entries.get(network_id)
                if entries is None:
                    entries = [row for ep in self.store.endpoints(network_id=network_id) for row in self._rows(ep)]
                    self._entries[network_id] = entries
        return entries

    def _current_name(self, container_id: str, recorded: str) -> str:
        # the container's name now (a rename shows at once), else the one recorded at connect
        name = self.container_name(container_id) if self.container_name is not None else None
        return name or recorded

    def names(self, network_id: str, asker: str | None = None) -> dict[str, list[str]]:
        """lower-case name -> addresses on one network: container names, short ids and aliases;
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

    def _user_networks(self, container_id: str) -> list[tuple[str, str, str | None]]:
        """(network id, name, its address there) of the container's user networks, in the order it
        joined them."""
        return [(ep.network_id, ep.network, ep.ip or ep.ip6) for ep in self.store.endpoints(container_id=container_id)
                if ep.network not in NO_NAMES]

    def container_names(self, container_id: str) -> dict[str, list[str]]:
        """What the container's resolver answers: the names on each of its user networks (the first
        network that has a name gives its addresses, as Docker's), and name.network on each."""
        out: dict[str, list[str]] = {}
        for network_id, network, ip in self._user_networks(container_id):
            suffix = "." + network.lower()
            for name, ips in self.names(network_id, asker=ip).items():
                out.setdefault(name, ips)
                out.setdefault(name + suffix, ips)
        return out

    def forwards(self, container_id: str) -> bool:
        """Whether other names go to the upstream resolvers: not when all its networks are Internal."""
        for ep in self.store.endpoints(container_id=container_id):
            rec = self.store.network_by_id(ep.network_id)
            if rec is not None and not rec.internal:
                return True
        return False

    def reverse(self, container_id: str, ip: str) -> str | None:
        """The PTR answer for a container at ip (either family) on one of the container's user
        networks: "<container name>.<network name>", as moby's Network.ResolveIP."""
        for network_id, network, _ip in self._user_networks(container_id):
            for addr, cid, (recorded, *_aliases), _links in self._dns_entries(network_id):
                if addr == ip:
                    return f"{self._current_name(cid, recorded) or cid[:12]}.{network}"
        return None
