"""GET /version's runtime and init components, read as moby reads them."""


def test_runtime_and_init_versions_read_as_moby():
    """/version's components: moby's parseRuntimeVersion and parseInitVersion."""
    from dockyard.runtime.runtimes import parse_version
    assert parse_version("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n") == \
        ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1")
    assert parse_version("crun version 1.8.1\ncommit: f8a096be060b\nrundir: /run/crun\nspec: 1.0.0\n") == \
        ("1.8.1", "f8a096be060b")
    assert parse_version("tini version 0.19.0 - git.de40ad0\n") == ("0.19.0", "de40ad0")
    assert parse_version("") == ("", "")
