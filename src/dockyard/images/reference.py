"""Image references parsed and normalized the way Docker does it.

A port of the grammar in github.com/distribution/reference: `bb` means
`docker.io/library/bb`, a first path part is a registry only if it looks
like a host (has a `.` or `:`, or is `localhost`, or has upper case), and
the familiar form drops `docker.io/` and `library/` again for display.
The error texts are Docker's, because users and tests grep for them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + r")"
_DOMAIN = _HOST + r"(?::[0-9]+)?"
_NAME = r"(?:" + _DOMAIN + r"/)?" + _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

REFERENCE_RE = re.compile(r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$")
TAG_RE = re.compile(r"^" + _TAG + r"$")
ID_RE = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(InvalidParameter):
    """A reference that does not parse; 400 like Docker's errdefs.InvalidParameter."""


@dataclass(frozen=True)
class Reference:
    domain: str                 # "docker.io", "localhost:5000"
    path: str                   # "library/bb"
    tag: str | None = None
    digest: str | None = None   # "sha256:<hex>"

    @property
    def name(self) -> str:
        """Fully qualified repository name: docker.io/library/bb."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository name as users type it: bb, user/app, quay.io/x/y."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def _suffix(self) -> str:
        s = f":{self.tag}" if self.tag is not None else ""
        return s + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> "Reference":
        if not TAG_RE.match(tag):
            raise InvalidReference("invalid tag format")
        return replace(self, tag=tag, digest=None)

    def with_default_tag(self) -> "Reference":
        """TagNameOnly: a bare name means :latest; a digest stays as it is."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self


def _validate_digest(digest: str) -> None:
    algo, _, hexpart = digest.partition(":")
    want = _DIGEST_HEX_LEN.get(algo)
    if want is None:
        raise InvalidReference("unsupported digest algorithm")
    if len(hexpart) != want:
        raise InvalidReference("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", hexpart):
        raise InvalidReference("invalid checksum digest format")


def parse(s: str) -> Reference:
    """reference.Parse: the grammar only, no normalization. Needs a domain
    prefix to be meaningful, so callers normally use `parse_normalized`."""
    m = REFERENCE_RE.match(s)
    if not m:
        if s == "":
            raise InvalidReference("repository name must have at least one component")
        if REFERENCE_RE.match(s.lower()):
            raise InvalidReference("invalid reference format: repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_MAX} characters")
    if digest:
        _validate_digest(digest)
    domain, slash, path = name.partition("/")
    if not slash:  # no domain part: only reachable without normalization
        domain, path = "", name
    return Reference(domain, path, tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_normalized(s: str) -> Reference:
    """reference.ParseNormalizedNamed: `bb` -> docker.io/library/bb."""
    if ID_RE.match(s):
        raise InvalidReference(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(s)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(domain + "/" + remainder)


def repo_tag(repo: str, tag: str | None) -> Reference:
    """The (repo, tag) pair of import/tag requests as one tagged reference
    (moby's httputils.RepoTagReference); an explicit tag wins over one in repo."""
    ref = parse_normalized(repo)
    if ref.digest:
        raise InvalidReference("cannot import digest reference")
    if tag:
        return ref.with_tag(tag)
    return ref.with_default_tag()


def familiar(s: str) -> str:
    """Familiar form of a stored fully qualified reference string."""
    return parse(s).familiar()
