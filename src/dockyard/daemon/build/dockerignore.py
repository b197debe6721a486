""".dockerignore: reading it as moby's ignorefile.ReadAll does and matching
paths with moby/patternmatcher's rules, plus Go's filepath.Match (which
COPY/ADD sources use, and which the matcher uses to reject bad patterns).

Rules (patternmatcher):
- a pattern is matched against the slash-separated path relative to the
  context root; `*` and `?` never cross a `/`, `**` crosses any number of
  directories, `[...]` classes, `\\` escapes;
- a pattern that matches a parent directory matches everything under it
  (MatchesOrParentMatches);
- `!pattern` re-includes; patterns apply in order, the last match wins.

Who applies it: the docker CLI leaves ignored files out of the context tar
it sends (keeping the Dockerfile and .dockerignore themselves, which the
daemon then needs); `filter_for_context` is that walk, for our CLI. The
daemon only drops the Dockerfile and .dockerignore from the context when
.dockerignore matches them (moby's removeDockerfile): `remove_ignored_build_files`.
"""
from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Iterator

from ...errors import InvalidParameter
from ...inroot import O_PATH, lstat_beneath

BAD_PATTERN = "syntax error in pattern"     # Go's filepath.ErrBadPattern
DOCKERIGNORE = ".dockerignore"


class BadPattern(InvalidParameter):
    def __init__(self, message: str = BAD_PATTERN):
        super().__init__(message)


# ---------------------------------------------------------------- Go's path helpers

def go_clean(path: str) -> str:
    """Go's path/filepath.Clean on a slash path."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    s = "/".join(out)
    if rooted:
        return "/" + s
    return s or "."


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    inrange = False
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n:
                i += 1
        elif c == "[":
            inrange = True
        elif c == "]":
            inrange = False
        elif c == "*" and not inrange:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern()
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern()
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise BadPattern()
    return r, rest


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    """(rest of s, ok); raises BadPattern for a malformed chunk (checked
    to its end even once the match failed)."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk.startswith("^"):
                negated = True
                chunk = chunk[1:]
            match = False
            nrange = 0
            while True:
                if chunk.startswith("]") and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if r and lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern()
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return "", False
    return s, True


def filepath_match(pattern: str, name: str) -> bool:
    """Go's path/filepath.Match (on Linux): `*` any run of non-`/`, `?` one
    non-`/` character, `[a-z]`/`[^a-z]` classes, `\\` escapes. A malformed
    pattern raises BadPattern (Go's ErrBadPattern) whatever the name."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name          # a trailing * matches the rest unless it has a /
        t, ok = _match_chunk(chunk, name)
        if ok and (not t or pattern):
            name = t
            continue
        if star:
            matched = False
            i = 0
            while i < len(name) and name[i] != "/":
                t, ok = _match_chunk(chunk, name[i + 1:])
                if ok:
                    if not pattern and t:
                        i += 1
                        continue
                    name = t
                    matched = True
                    break
                i += 1
            if matched:
                continue
        # before answering no, check the rest of the pattern is well-formed
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def has_glob(pattern: str) -> bool:
    """Whether a COPY source is a pattern (moby's containsWildcards: an
    unescaped * ? or [)."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c in "*?[":
            return True
        i += 1
    return False


# ---------------------------------------------------------------- reading the file

def read_patterns(data: bytes | str) -> list[str]:
    """moby's ignorefile.ReadAll: a UTF-8 BOM stripped, `#` lines skipped,
    each pattern trimmed and Clean'd, a leading `/` dropped, `!` kept."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    if data.startswith("\ufeff"):
        data = data[1:]
    out: list[str] = []
    for line in data.split("\n"):          # bufio.ScanLines: \n, a trailing \r dropped
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        invert = p[0] == "!"
        if invert:
            p = p[1:].strip()
        if p:
            p = go_clean(p)
            if len(p) > 1 and p[0] == "/":
                p = p[1:]
        out.append("!" + p if invert else p)
    return out


# ---------------------------------------------------------------- matching

_ESCAPED = frozenset(".+()|{}$")
_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)


class Pattern:
    """One cleaned pattern, compiled as patternmatcher compiles it: an exact
    name, a `x/**` prefix, a `**/x` suffix, or a regular expression."""

    __slots__ = ("text", "exclusion", "dirs", "kind", "regex", "bad")

    def __init__(self, text: str, exclusion: bool):
        self.text = text
        self.exclusion = exclusion
        self.dirs = text.split("/")
        self.regex: re.Pattern | None = None
        self.bad = False
        self.kind = self._compile()

    def _compile(self) -> int:
        p = self.text
        out: list[str] = []
        kind = _EXACT
        i, n = 0, len(p)
        first = True
        while i < n:
            ch = p[i]
            i += 1
            if ch == "*":
                if i < n and p[i] == "*":
                    i += 1
                    if i < n and p[i] == "/":       # **/ is **
                        i += 1
                    if i >= n:
                        if kind == _EXACT:
                            kind = _PREFIX
                        else:
                            out.append(".*")
                            kind = _REGEXP
                    else:
                        out.append("(.*/)?")
                        kind = _REGEXP
                    if first:
                        kind = _SUFFIX
                else:
                    out.append("[^/]*")
                    kind = _REGEXP
            elif ch == "?":
                out.append("[^/]")
                kind = _REGEXP
            elif ch in _ESCAPED:
                out.append("\\" + ch)
            elif ch == "\\":
                if i < n:
                    out.append("\\" + p[i])
                    i += 1
                    kind = _REGEXP
                else:
                    out.append("\\\\")
            elif ch in "[]":
                out.append(ch)
                kind = _REGEXP
            else:
                out.append(ch)
            first = False
        if kind == _REGEXP:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # "possible nested set": Go reads [[] as Python does
                    self.regex = re.compile("".join(out))
            except re.error:
                self.bad = True         # Go: ErrBadPattern from match: counts as no match
        return kind

    def match(self, path: str) -> bool:
        k = self.kind
        if k == _EXACT:
            return path == self.text
        if k == _PREFIX:
            return path.startswith(self.text[:-2])
        if k == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]     # **/foo matches foo
        if self.regex is None:
            return False
        return self.regex.fullmatch(path) is not None

    def __repr__(self) -> str:
        return ("!" if self.exclusion else "") + self.text


class PatternMatcher:
    """moby's patternmatcher.PatternMatcher over .dockerignore patterns."""

    def __init__(self, patterns: list[str]):
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for p in patterns:
            p = p.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p[0] == "!"
            if exclusion:
                if len(p) == 1:
                    raise InvalidParameter('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            filepath_match(p, ".")                  # a malformed pattern is an error now
            self.patterns.append(Pattern(p, exclusion))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, relpath: str) -> bool:
        """Whether `relpath` (slash-separated, relative to the context) is
        excluded: MatchesOrParentMatches. The root itself never is."""
        path = go_clean(relpath)
        if path == ".":
            return False
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parent_dirs = parent.split("/")
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue            # an inclusion already matched, or nothing to re-include yet
            m = pat.match(path)
            if not m and parent != ".":
                for i in range(len(parent_dirs)):
                    if pat.match("/".join(parent_dirs[:i + 1])):
                        m = True
                        break
            if m:
                matched = not pat.exclusion
        return matched

    def matches_with_parent(self, relpath: str, parent_info: list[bool] | None) -> tuple[bool, list[bool]]:
        """MatchesUsingParentResults: the same answer as `matches`, cheaper
        in a walk that hands each directory's info to its children
        (None for a child of the root)."""
        if parent_info is None:
            return self.matches(relpath), self._info_from_parents(relpath)
        matched = False
        info = [False] * len(self.patterns)
        for i, pat in enumerate(self.patterns):
            m = parent_info[i]
            if not m:
                if pat.exclusion != matched:
                    continue
                m = pat.match(relpath)
            info[i] = m
            if m:
                matched = not pat.exclusion
        return matched, info

    def _info_from_parents(self, relpath: str) -> list[bool]:
        # the per-pattern results for a path whose parents are not known
        # (MatchesUsingParentResults with an empty MatchInfo)
        parent = relpath.rsplit("/", 1)[0] if "/" in relpath else "."
        parent_dirs = parent.split("/")
        matched = False
        info = [False] * len(self.patterns)
        for i, pat in enumerate(self.patterns):
            if pat.exclusion != matched:
                continue
            m = pat.match(relpath)
            if not m and parent != ".":
                m = any(pat.match("/".join(parent_dirs[:j + 1])) for j in range(len(parent_dirs)))
            info[i] = m
            if m:
                matched = not pat.exclusion
        return info

    def may_include_under(self, reldir: str) -> bool:
        """Whether an excluded directory may still hold re-included paths
        (an exception pattern that starts with it), so a walk must enter it:
        the docker CLI's (archive.TarWithOptions) rule for skipping a dir."""
        if not self.exclusions:
            return False
        prefix = reldir + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


# ---------------------------------------------------------------- the CLI's walk and the daemon's rule

def trim_build_files(patterns: list[str], dockerfile: str | None) -> list[str]:
    """The docker CLI's TrimBuildFilesFromExcludes: .dockerignore and the
    Dockerfile go to the daemon even when ignored (exceptions appended)."""
    out = list(patterns)
    if not out:
        return out
    pm = PatternMatcher(out)
    if pm.matches(DOCKERIGNORE):
        out.append("!" + DOCKERIGNORE)
    if dockerfile:
        df = go_clean(dockerfile.replace(os.sep, "/"))
        if pm.matches(df):
            out.append("!" + df)
    return out


def filter_for_context(root: str, patterns: list[str], dockerfile: str | None = "Dockerfile") -> Iterator[str]:
    """The paths (relative, slash-separated, parents before children, in
    lexical order like filepath.Walk) that the docker CLI puts into the
    context tar for directory `root` and .dockerignore `patterns`;
    `dockerfile` is the Dockerfile's path inside the context (None when it
    is elsewhere or on stdin), kept even when ignored. An excluded
    directory is not listed, nor entered unless an exception may re-include
    something below it. Symlinks are listed, never followed."""
    pm = PatternMatcher(trim_build_files(patterns, dockerfile))
    use = bool(pm)

    def walk(dir_path: str, rel: str, info: list[bool] | None) -> Iterator[str]:
        try:
            with os.scandir(dir_path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for e in entries:
            r = f"{rel}/{e.name}" if rel else e.name
            is_dir = e.is_dir(follow_symlinks=False)
            child_info = None
            if use:
                skip, child_info = pm.matches_with_parent(r, info)
                if skip:
                    if is_dir and pm.may_include_under(r):
                        yield from walk(e.path, r, child_info)
                    continue
            yield r
            if is_dir:
                yield from walk(e.path, r, child_info)

    yield from walk(root, "", None)


def remove_ignored_build_files(context_dir: str, dockerfile: str) -> None:
    """moby's removeDockerfile: once the Dockerfile is read, .dockerignore
    and the Dockerfile leave the context if .dockerignore matches them
    (so `COPY . /` does not copy them). Only paths inside `context_dir`,
    resolved without following symlinks; a bad pattern is ignored as
    moby ignores it here."""
    fd = os.open(context_dir, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = lstat_beneath(fd, DOCKERIGNORE)
        if st is None or not stat.S_ISREG(st.st_mode):
            return
        ifd = os.open(DOCKERIGNORE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        with os.fdopen(ifd, "rb") as f:
            data = f.read(1 << 20)
        try:
            pm = PatternMatcher(read_patterns(data))
        except InvalidParameter:
            return
        for name in (DOCKERIGNORE, dockerfile):
            rel = go_clean(name).lstrip("/")
            if rel in (".", "") or rel.startswith("../") or rel == "..":
                continue
            if not pm.matches(rel):
                continue
            _unlink_beneath(fd, rel)
    finally:
        os.close(fd)


def _unlink_beneath(root_fd: int, rel: str) -> None:
    parts = rel.split("/")
    cur = os.dup(root_fd)
    try:
        for p in parts[:-1]:
            try:
                nfd = os.open(p, O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            except OSError:
                return
            os.close(cur)
            cur = nfd
        try:
            os.unlink(parts[-1], dir_fd=cur)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            pass
    finally:
        os.close(cur)
