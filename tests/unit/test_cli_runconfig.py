"""run/create flags → the POST /containers/create body docker 28 sends."""
import pytest

from dockyard.cli import runconfig
from dockyard.cli.flags import UsageError
from dockyard.cli.run import CREATE, RUN, start_error_code


def body(argv, environ=None, spec=RUN):
    opts, args = spec.parse(argv, "dockyard run")
    return runconfig.build_create_body(opts, args, environ or {})


def test_the_brief_example():
    b = body(["-e", "A=1", "--restart", "on-failure:3", "--network", "none", "-l", "a=b",
              "--name", "x", "img", "cmd", "arg"])
    assert b["Image"] == "img"
    assert b["Cmd"] == ["cmd", "arg"]
    assert b["Env"] == ["A=1"]
    assert b["Labels"] == {"a": "b"}
    assert b["Entrypoint"] is None
    assert (b["AttachStdin"], b["AttachStdout"], b["AttachStderr"]) == (False, True, True)
    host = b["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NetworkMode"] == "none"
    assert host["AutoRemove"] is False
    assert b["NetworkingConfig"] == {"EndpointsConfig": {}}
    assert "name" not in b  # the name travels as a query parameter


def test_defaults_match_docker():
    b = body(["img"])
    assert b["Env"] is None and b["Cmd"] is None and b["Labels"] == {} and b["Volumes"] == {}
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert b["HostConfig"]["NetworkMode"] == "default"
    assert b["HostConfig"]["MemorySwappiness"] == -1
    assert list(b["NetworkingConfig"]["EndpointsConfig"]) == ["default"]


def test_detached_interactive_tty_and_rm():
    b = body(["-d", "-i", "-t", "--rm", "img"])
    assert (b["AttachStdin"], b["AttachStdout"], b["OpenStdin"], b["StdinOnce"], b["Tty"]) == \
        (False, False, True, False, True)
    assert b["HostConfig"]["AutoRemove"] is True
    b = body(["-it", "img"])
    assert (b["AttachStdin"], b["OpenStdin"], b["StdinOnce"]) == (True, True, True)


def test_create_never_attaches():
    opts, args = CREATE.parse(["img"], "dockyard create")
    opts.detach = False
    b = runconfig.build_create_body(opts, args, {})
    assert b["AttachStdout"] is True  # docker's create still marks stdout/stderr attachable


def test_workdir_user_entrypoint_hostname_runtime():
    b = body(["-w", "/w", "-u", "1:2", "--entrypoint", "/bin/sh", "--hostname", "h",
              "--runtime", "crun", "img"])
    assert (b["WorkingDir"], b["User"], b["Entrypoint"], b["Hostname"]) == ("/w", "1:2", ["/bin/sh"], "h")
    assert b["HostConfig"]["Runtime"] == "crun"
    assert body(["--entrypoint", "", "img"])["Entrypoint"] == [""]  # "no entrypoint"


def test_env_from_our_environment_and_files(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("\ufeffX=1\n# comment\n  Y\n\nZ=a b \nUNSET\n")
    b = body(["--env-file", str(env_file), "-e", "Y", "-e", "NOPE", "-e", "W=2", "img"], {"Y": "fromenv"})
    assert b["Env"] == ["X=1", "Y=fromenv", "Z=a b ", "Y=fromenv", "NOPE", "W=2"]


def test_env_file_errors(tmp_path):
    with pytest.raises(UsageError, match="contains whitespaces"):
        runconfig.parse_env_file("BAD KEY=1\n", {})
    with pytest.raises(UsageError, match="no variable name"):
        runconfig.parse_env_file("=1\n", {})
    with pytest.raises(UsageError, match="no such file"):
        body(["--env-file", str(tmp_path / "absent"), "img"])


@pytest.mark.parametrize("text, expected", [
    ("", {"Name": "no", "MaximumRetryCount": 0}),
    ("no", {"Name": "no", "MaximumRetryCount": 0}),
    ("always", {"Name": "always", "MaximumRetryCount": 0}),
    ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
])
def test_restart_policies(text, expected):
    assert runconfig.parse_restart_policy(text) == expected


@pytest.mark.parametrize("text, message", [
    (":3", "no policy provided before colon"),
    ("on-failure:x", "maximum retry count must be an integer"),
    ("always:3", "can only be used with 'on-failure'"),
    ("on-failure:-1", "cannot be negative"),
    ("sometimes", "unknown policy 'sometimes'"),
])
def test_bad_restart_policies(text, message):
    with pytest.raises(UsageError, match=message):
        runconfig.parse_restart_policy(text)


def test_rm_conflicts_with_a_restart_policy():
    with pytest.raises(UsageError, match="cannot specify both --restart and --rm"):
        body(["--rm", "--restart", "always", "img"])


def test_ports_volumes_and_host_options():
    b = body(["-p", "8080:80", "-p", "127.0.0.1:53:53/udp", "-p", "9000", "-p", "[::1]:81:81",
              "-p", "7000-7001:8000-8001", "-P", "-v", "/a:/b:ro", "-v", "/anon", "--tmpfs", "/t:size=1m",
              "--cap-add", "net_admin", "--cap-drop", "ALL", "--init", "--privileged", "--read-only",
              "--stop-signal", "SIGINT", "--stop-timeout", "5", "img"])
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "81/tcp": {},
                                 "8000/tcp": {}, "8001/tcp": {}}
    bindings = b["HostConfig"]["PortBindings"]
    assert bindings["80/tcp"] == [{"HostIp": "", "HostPort": "8080"}]
    assert bindings["53/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "53"}]
    assert bindings["9000/tcp"] == [{"HostIp": "", "HostPort": ""}]
    assert bindings["81/tcp"] == [{"HostIp": "::1", "HostPort": "81"}]
    assert bindings["8001/tcp"] == [{"HostIp": "", "HostPort": "7001"}]
    host = b["HostConfig"]
    assert host["Binds"] == ["/a:/b:ro"] and b["Volumes"] == {"/anon": {}}
    assert host["Tmpfs"] == {"/t": "size=1m"}
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] == ["ALL"]
    assert host["Init"] and host["Privileged"] and host["ReadonlyRootfs"] and host["PublishAllPorts"]
    assert (b["StopSignal"], b["StopTimeout"]) == ("SIGINT", 5)


def test_familiar_image_names():
    assert runconfig.familiar_image("busybox") == "busybox:latest"
    assert runconfig.familiar_image("busybox:1.36") == "busybox:1.36"
    assert runconfig.familiar_image("localhost:5000/app") == "localhost:5000/app:latest"
    assert runconfig.familiar_image("app@sha256:abc") == "app@sha256:abc"


@pytest.mark.parametrize("message, code", [
    ('exec: "nope": executable file not found in $PATH', 127),
    ("open /bin/x: no such file or directory", 127),
    ('exec: "/etc": permission denied', 126),
    ("boom", 125),
])
def test_start_error_exit_codes(message, code):
    assert start_error_code(message) == code
