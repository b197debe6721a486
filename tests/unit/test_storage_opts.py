"""`--storage-opt` at create, as moby's overlay2 driver on a backing
filesystem without project quotas answers it."""
import pytest

from dockyard.daemon.rootfs import NO_QUOTA, check_storage_opts
from dockyard.errors import SystemError_


def test_size_cannot_be_enforced_other_keys_are_unknown():
    check_storage_opts(None)
    check_storage_opts({})
    for opts in ({"size": "1M"}, {"foo": "x", "size": "1M"}, {"Size": "1G"}):
        with pytest.raises(SystemError_) as e:
            check_storage_opts(opts)
        assert (e.value.status, str(e.value)) == (500, NO_QUOTA)
    assert NO_QUOTA == "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
    with pytest.raises(SystemError_, match="^Unknown option foo$"):
        check_storage_opts({"Foo": "bar"})
