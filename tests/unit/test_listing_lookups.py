"""A container listing looks each network, image config and image ref up
once per request, not once per container (container_filters.Lookups)."""
from dockyard.daemon.container_filters import Lookups
from dockyard.errors import NotFound


class _Networks:
    def __init__(self):
        self.calls = []

    def find(self, ref):
        self.calls.append(ref)
        if ref == "gone":
            raise NotFound(f"network {ref} not found")
        return ("rec", ref)


class _Images:
    def __init__(self):
        self.calls = []

    def config(self, image_id):
        self.calls.append(image_id)
        return {"Cmd": ["sh"]}

    def resolve(self, ref):
        self.calls.append(ref)

        class _Img:
            id = "sha256:" + ref
        return _Img()


class _Daemon:
    def __init__(self):
        self.networks, self.images = _Networks(), _Images()


def test_each_key_is_looked_up_once_and_misses_raise_every_time():
    d = _Daemon()
    lk = Lookups(d)
    for _ in range(5):
        assert lk.network("bridge") == ("rec", "bridge")
        assert lk.image_config("sha256:a") == {"Cmd": ["sh"]}
        assert lk.image_id("bb") == "sha256:bb"
        try:
            lk.network("gone")
            raise AssertionError("a missing network must raise NotFound each time")
        except NotFound:
            pass
    assert d.networks.calls == ["bridge", "gone"]
    assert d.images.calls == ["sha256:a", "bb"]
