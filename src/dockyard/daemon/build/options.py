"""What one build was asked for: POST /build's query parameters, parsed
and checked by api/build.py, read by service.py."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"          # path in the context (or the CLI's outside-context name)
    tags: list[str] = field(default_factory=list)          # t=, several
    extra_hosts: list[str] = field(default_factory=list)   # extrahosts: "name:ip"
    quiet: bool = False                     # q
    nocache: bool = False
    cache_from: list[str] = field(default_factory=list)
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    memory: int = 0
    memswap: int = 0
    cpushares: int = 0
    cpusetcpus: str = ""
    cpuperiod: int = 0
    cpuquota: int = 0
    buildargs: dict[str, str | None] = field(default_factory=dict)
    shmsize: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    networkmode: str = ""                   # "" = default (bridge)
    platform: str = ""
    target: str = ""
    ulimits: list[dict] = field(default_factory=list)      # [{"Name":..,"Soft":..,"Hard":..}]
    auth_configs: dict[str, dict] = field(default_factory=dict)   # X-Registry-Config
    squash: bool = False
