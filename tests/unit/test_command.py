import pytest

from dockyard import errors
from dockyard.runtime.command import DEFAULT_PATH, merge_env, resolve_command

IMAGE_BOTH = {"Entrypoint": ["/entry.sh"], "Cmd": ["serve", "--port", "80"]}
IMAGE_CMD_ONLY = {"Cmd": ["/bin/sh"]}
IMAGE_SHELL_FORM = {"Cmd": ["/bin/sh", "-c", "echo $HOME && sleep 1"]}


@pytest.mark.parametrize("image, config, expected", [
    # nothing overridden: image entrypoint + image cmd
    (IMAGE_BOTH, {}, ["/entry.sh", "serve", "--port", "80"]),
    (IMAGE_BOTH, {"Entrypoint": None, "Cmd": None}, ["/entry.sh", "serve", "--port", "80"]),
    # container cmd replaces image cmd, image entrypoint kept
    (IMAGE_BOTH, {"Cmd": ["debug"]}, ["/entry.sh", "debug"]),
    # container entrypoint: image cmd is dropped
    (IMAGE_BOTH, {"Entrypoint": ["/bin/echo"]}, ["/bin/echo"]),
    (IMAGE_BOTH, {"Entrypoint": ["/bin/echo"], "Cmd": ["hi"]}, ["/bin/echo", "hi"]),
    # --entrypoint "" clears the entrypoint and, being an override, the image cmd
    (IMAGE_BOTH, {"Entrypoint": [""], "Cmd": ["ls", "-l"]}, ["ls", "-l"]),
    # Entrypoint [] clears it but Docker still falls back to the image cmd
    (IMAGE_BOTH, {"Entrypoint": []}, ["serve", "--port", "80"]),
    (IMAGE_BOTH, {"Entrypoint": [], "Cmd": ["ls"]}, ["ls"]),
    # images without an entrypoint
    (IMAGE_CMD_ONLY, {}, ["/bin/sh"]),
    (IMAGE_CMD_ONLY, {"Cmd": ["echo", "ok"]}, ["echo", "ok"]),
    (IMAGE_CMD_ONLY, {"Entrypoint": ["/bin/true"]}, ["/bin/true"]),
    (IMAGE_SHELL_FORM, {}, ["/bin/sh", "-c", "echo $HOME && sleep 1"]),
    # no image config at all
    (None, {"Cmd": ["/bin/true"]}, ["/bin/true"]),
    # an empty container Cmd list falls back to the image's
    (IMAGE_CMD_ONLY, {"Cmd": []}, ["/bin/sh"]),
    # a JSON string is one argv entry (moby's StrSlice), never shell-split
    (IMAGE_CMD_ONLY, {"Cmd": "echo hi"}, ["echo hi"]),
    (IMAGE_BOTH, {"Entrypoint": "/bin/sh -c"}, ["/bin/sh -c"]),
])
def test_resolve_command(image, config, expected):
    assert resolve_command(config, image) == expected


@pytest.mark.parametrize("image, config", [
    ({}, {}),
    (None, {"Cmd": []}),
    (IMAGE_BOTH, {"Entrypoint": [""]}),          # cleared, and image cmd not used
    ({"Entrypoint": ["/e"]}, {"Entrypoint": [""], "Cmd": None}),
])
def test_no_command(image, config):
    with pytest.raises(errors.InvalidParameter, match="No command specified"):
        resolve_command(config, image)


def test_resolve_command_does_not_mutate_inputs():
    image = {"Entrypoint": ["/e"], "Cmd": ["a"]}
    config = {"Cmd": ["b"]}
    resolve_command(config, image)
    assert image == {"Entrypoint": ["/e"], "Cmd": ["a"]} and config == {"Cmd": ["b"]}


def test_env_defaults():
    assert merge_env(None, None, "abc", False) == ["PATH=" + DEFAULT_PATH, "HOSTNAME=abc"]
    assert merge_env([], [], "abc", True) == ["PATH=" + DEFAULT_PATH, "HOSTNAME=abc", "TERM=xterm"]


def test_env_image_path_replaces_default_in_place():
    env = merge_env(["PATH=/opt/bin:/bin", "LANG=C.UTF-8"], [], "h", False)
    assert env == ["PATH=/opt/bin:/bin", "HOSTNAME=h", "LANG=C.UTF-8"]


def test_env_container_overrides_image_in_docker_order():
    # Docker: request env first, then the image's keys it did not set.
    env = merge_env(["A=1", "B=2"], ["B=3", "C=4"], "h", False)
    assert env == ["PATH=" + DEFAULT_PATH, "HOSTNAME=h", "B=3", "C=4", "A=1"]


def test_env_container_can_override_defaults():
    env = merge_env([], ["TERM=dumb", "HOSTNAME=custom", "PATH=/x"], "h", True)
    assert env == ["PATH=/x", "HOSTNAME=custom", "TERM=dumb"]


def test_env_bare_name_unsets():
    assert merge_env(["FOO=bar", "KEEP=1"], ["FOO"], "h", False) == [
        "PATH=" + DEFAULT_PATH, "HOSTNAME=h", "KEEP=1"]
    assert "TERM=xterm" not in merge_env([], ["TERM"], "h", True)


def test_env_values_may_contain_equals():
    env = merge_env(["OPTS=a=b"], ["X=y=z"], "h", False)
    assert env[-2:] == ["X=y=z", "OPTS=a=b"]


def test_env_merge_is_idempotent():
    # A Config.Env already merged at create time gives the same result.
    image = ["PATH=/usr/bin", "A=1"]
    first = merge_env(image, ["B=2"], "h", False)
    merged_config_env = ["B=2", "PATH=/usr/bin", "A=1"]
    assert merge_env(image, merged_config_env, "h", False) == first
