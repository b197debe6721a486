""".dockerignore: moby's ReadAll, patternmatcher semantics, Go's
filepath.Match, the CLI's context walk and the daemon's removal of the
Dockerfile/.dockerignore."""
import os

import pytest

from dockyard.daemon.build.dockerignore import (
    BadPattern, PatternMatcher, filepath_match, filter_for_context, go_clean, has_glob,
    read_patterns, remove_ignored_build_files, trim_build_files,
)
from dockyard.errors import InvalidParameter


def test_read_patterns():
    content = ("\ufefftest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
               "! /inverted/abs/path\n!\n! \n  spaced/../x/  \r\n #not a comment\n/\n")
    assert read_patterns(content.encode()) == [
        "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!",
        "x", "#not a comment", "/",
    ]
    assert read_patterns("") == []


@pytest.mark.parametrize("path,clean", [
    ("", "."), ("a//b/./c/", "a/b/c"), ("/../a", "/a"), ("../../a", "../../a"),
    ("a/../..", ".."), ("//x", "/x"), ("/", "/"),
])
def test_go_clean(path, clean):
    assert go_clean(path) == clean


@pytest.mark.parametrize("pattern,path,excluded", [
    ("**", "file", True),
    ("**/", "file", True),
    ("**", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),                 # a parent matches: its contents are excluded
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "dir/dir/file", True),
    ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("a\\\\", "a\\", True),
    ("a\\*b", "a*b", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("docs", "docs/sub/README.md", True),
    ("docs/", "docs/README.md", True),
    ("*", "a/b/c", True),                         # "a" matches *, so everything under it
    ("a*/b", "a/c/b", False),
    ("sub/*", "sub", False),
    ("/abs", "abs/x", True),
])
def test_matches(pattern, path, excluded):
    assert PatternMatcher(read_patterns(pattern)).matches(path) is excluded


@pytest.mark.parametrize("patterns,path,excluded", [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/x-1.whl", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/other.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
    (["*.go"], ".", False),                       # never the root
])
def test_exceptions_last_match_wins(patterns, path, excluded):
    assert PatternMatcher(patterns).matches(path) is excluded


def test_parent_results_agree_with_matches():
    pats = ["**/node_modules", "build/*", "!build/keep", "*.log", "!important.log", "docs"]
    pm = PatternMatcher(pats)
    paths = ["a", "a/node_modules", "a/node_modules/x/y", "build", "build/keep", "build/keep/z",
             "build/other", "x.log", "important.log", "d/x.log", "docs", "docs/a/b"]
    infos = {}
    for p in paths:
        parent = p.rsplit("/", 1)[0] if "/" in p else None
        got, infos[p] = pm.matches_with_parent(p, infos.get(parent) if parent else None)
        assert got == pm.matches(p), p


@pytest.mark.parametrize("pattern,name,ok", [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "ab/c", False),
    ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[^e-g]", "abc", True), ("a\\*b", "ab", False),
    ("a?b", "a☺b", True), ("a???b", "a☺b", False), ("[a-ζ]*", "α", True), ("a?b", "a/b", False),
    ("[\\]a]", "]", True), ("[x\\-]", "-", True), ("[\\-x]", "a", False), ("*x", "xxx", True),
    ("*.txt", "dir/a.txt", False), ("file[0-9].txt", "file5.txt", True),
])
def test_filepath_match(pattern, name, ok):
    assert filepath_match(pattern, name) is ok


@pytest.mark.parametrize("pattern", ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^",
                                     "[^bc", "a[", "*[x"])
def test_filepath_match_bad_pattern(pattern):
    with pytest.raises(BadPattern) as e:
        filepath_match(pattern, "a")
    assert e.value.message == "syntax error in pattern"
    with pytest.raises(BadPattern):
        PatternMatcher([pattern])


def test_single_exclamation_is_an_error():
    with pytest.raises(InvalidParameter) as e:
        PatternMatcher(["!"])
    assert e.value.message == 'illegal exclusion pattern: "!"'


def test_has_glob():
    assert has_glob("*.txt") and has_glob("a?") and has_glob("[ab]")
    assert not has_glob("plain/file") and not has_glob("a\\*b")


def _tree(root, files):
    for f in files:
        p = os.path.join(root, f)
        if f.endswith("/"):
            os.makedirs(p, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as fh:
                fh.write(f)


def test_filter_for_context_walks_like_the_cli(tmp_path):
    _tree(tmp_path, ["Dockerfile", ".dockerignore", "app/main.py", "app/cache/x.pyc",
                     "node_modules/a/b.js", "build/keep/k", "build/drop", "logs/a.log",
                     "README.md", "secret.env"])
    os.symlink("/etc", tmp_path / "link")
    patterns = ["node_modules", "build", "!build/keep", "*.log", "logs", "app/cache",
                "Dockerfile", ".dockerignore", "*.env"]
    got = list(filter_for_context(str(tmp_path), patterns, "Dockerfile"))
    assert got == [".dockerignore", "Dockerfile", "README.md", "app", "app/main.py",
                   "build/keep", "build/keep/k", "link"]
    # no patterns: everything, parents first, symlinks not followed
    assert "link" in list(filter_for_context(str(tmp_path), [], "Dockerfile"))
    assert not any(p.startswith("link/") for p in filter_for_context(str(tmp_path), [], None))


def test_trim_build_files():
    assert trim_build_files(["*"], "sub/Dockerfile") == ["*", "!.dockerignore", "!sub/Dockerfile"]
    assert trim_build_files(["*.md"], "Dockerfile") == ["*.md"]
    assert trim_build_files([], "Dockerfile") == []


def test_remove_ignored_build_files(tmp_path):
    _tree(tmp_path, ["Dockerfile", "other.Dockerfile", "keep"])
    (tmp_path / ".dockerignore").write_text("*Dockerfile\n.dockerignore\n")
    remove_ignored_build_files(str(tmp_path), "other.Dockerfile")
    assert sorted(os.listdir(tmp_path)) == ["Dockerfile", "keep"]   # only the build's own files go


def test_remove_ignored_build_files_stays_inside(tmp_path):
    ctx, outside = tmp_path / "ctx", tmp_path / "out"
    ctx.mkdir()
    outside.mkdir()
    (outside / "Dockerfile").write_text("victim")
    os.symlink(str(outside), ctx / "sub")
    (ctx / ".dockerignore").write_text("sub\n")
    remove_ignored_build_files(str(ctx), "sub/Dockerfile")       # a symlinked dir is not followed
    remove_ignored_build_files(str(ctx), "../out/Dockerfile")
    assert (outside / "Dockerfile").read_text() == "victim"
    (ctx / ".dockerignore").unlink()
    remove_ignored_build_files(str(ctx), "Dockerfile")            # no .dockerignore: nothing to do
