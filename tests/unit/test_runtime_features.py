"""Recursive read-only support (`rro`) as moby's supportsRecursivelyReadOnly
decides it: the kernel's mount_setattr, then the runtime's `features`."""
from __future__ import annotations

import pytest

from dockyard.runtime import features


@pytest.fixture(autouse=True)
def fresh_caches():
    features.kernel_rro_error.cache_clear()
    features.mount_options.cache_clear()
    yield
    features.kernel_rro_error.cache_clear()
    features.mount_options.cache_clear()


def _fake(tmp_path, name, script):
    exe = tmp_path / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return str(exe)


def test_rro_errors_in_moby_words(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "kernel_rro_error", lambda: None)
    runc = _fake(tmp_path, "runc", '[ "$1" = features ] && echo \'{"mountOptions": ["ro", "rro"]}\'\n')
    assert features.rro_error("runc", runc) is None
    old = _fake(tmp_path, "runc-old", '[ "$1" = features ] && echo \'{"mountOptions": ["ro"]}\'\n')
    assert features.rro_error("runc", old) == 'rro is not supported by runtime "runc"'
    none = _fake(tmp_path, "other", "exit 1\n")
    assert features.rro_error("other", none) == \
        'rro is not supported by runtime "other": OCI features struct is not available'
    # crun before 1.9 has no `features` verb but applies rro since 1.4
    crun = _fake(tmp_path, "crun", '[ "$1" = --version ] && echo "crun version 1.8.1" && exit 0\nexit 1\n')
    assert features.rro_error("crun", crun) is None
    crun13 = _fake(tmp_path, "crun13", '[ "$1" = --version ] && echo "crun version 1.3" && exit 0\nexit 1\n')
    assert "OCI features struct is not available" in features.rro_error("crun", crun13)


def test_kernel_without_mount_setattr(monkeypatch):
    monkeypatch.setattr(features, "kernel_rro_error", lambda: "failed to call mount_setattr: function not implemented")
    assert features.rro_error("runc", "/bin/true") == (
        "rro is not supported: failed to call mount_setattr: function not implemented (kernel is older than 5.12?)")
