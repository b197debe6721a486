"""network/cni.py without the network: config loading, what a plugin gets
(environment, stdin with name/cniVersion/prevResult/runtimeConfig), result
and error parsing, the result cache, DEL order and tolerance, CHECK.

The plugins are a fake (a Python script under several names) that logs each
call to $FAKECNI_LOG and answers what its config tells it to."""
from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from dockyard.network import cni
from dockyard.network.cni import CNI, Bandwidth, DNSConfig, PortMapping

FAKE = f"""#!{sys.executable} -IS
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
if cmd == "VERSION":
    name = os.path.basename(sys.argv[0])
    versions = ["0.1.0", "0.2.0"] if name == "old" else ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
    with open(os.environ["FAKECNI_LOG"] + ".versions", "a") as f:
        f.write(name + "\\n")
    print(json.dumps({{"cniVersion": conf["cniVersion"], "supportedVersions": versions}}))
    sys.exit(0)
with open(os.environ["FAKECNI_LOG"], "a") as f:
    f.write(json.dumps({{"type": conf["type"], "cmd": cmd, "conf": conf,
                         "env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}}}) + "\\n")
if conf.get("failOn") == cmd or (cmd == "DEL" and conf.get("failDel")):
    if conf.get("stderrOnly"):
        sys.stderr.write("boom on stderr\\n")
    else:
        print(json.dumps(conf["error"]))
    sys.exit(1)
if cmd == "ADD":
    res = conf.get("result") or conf.get("prevResult") or {{"cniVersion": conf["cniVersion"]}}
    res = dict(res, cniVersion=conf["cniVersion"])
    res.setdefault("seen", []).append(conf["type"])
    print(json.dumps(res))
"""

RESULT_100 = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
                   {"name": "veth1", "mac": "aa:bb:cc:00:00:02"},
                   {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/run/netns/x"}],
    "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
            {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2}],
    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.0.0.0/8", "gw": "10.88.0.254"}],
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"],
            "options": ["ndots:5"]},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bins = tmp_path / "bin"
    bins.mkdir()
    for name in ("fa", "fb", "fc", "old", "loopback"):
        p = bins / name
        p.write_text(FAKE)
        p.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKECNI_LOG", str(log))
    monkeypatch.setenv("CNI_COMMAND", "stale")   # never leaks into a plugin's environment
    conf = tmp_path / "net.d"
    conf.mkdir()

    class Env:
        tmp = tmp_path
        bin_dir = str(bins)
        conf_dir = conf
        cache_dir = tmp_path / "cache"

        def client(self, **kw) -> CNI:
            return CNI([str(tmp_path / "empty-bin"), str(bins)], str(conf), str(self.cache_dir), **kw)

        def write(self, name: str, body) -> None:
            (conf / name).write_text(body if isinstance(body, str) else json.dumps(body))

        def calls(self) -> list[dict]:
            if not log.exists():
                return []
            out = [json.loads(line) for line in log.read_text().splitlines()]
            log.unlink()
            return out

    return Env()


def conflist(name="podnet", version="1.0.0", plugins=None, **extra) -> dict:
    return {"cniVersion": version, "name": name, "plugins": [{"type": "fa"}, {"type": "fb"}] if plugins is None else plugins, **extra}


# ------------------------------------------------------------------ config

def test_first_valid_file_by_name_is_the_network(env):
    env.write("30-later.conflist", conflist(name="later"))
    env.write("20-bad.conflist", "{not json")
    env.write("10-notype.conf", {"cniVersion": "1.0.0", "name": "x"})
    env.write("05-missing-plugin.conflist", conflist(name="m", plugins=[{"type": "nosuch"}]))
    env.write("01-ignored.txt", conflist(name="txt"))
    (env.conf_dir / "00-dir.conflist").mkdir()
    env.write("25-version.conflist", conflist(name="v", version="9.9.9"))
    env.write("27-old-plugin.conflist", conflist(name="o", version="0.3.1", plugins=[{"type": "fa"}, {"type": "old"}]))
    c = env.client()
    net, skipped = c.load()
    assert net.name == "later" and net.source.endswith("30-later.conflist")
    assert [s.split(":")[0] for s in skipped] == ["05-missing-plugin.conflist", "10-notype.conf",
                                                  "20-bad.conflist", "25-version.conflist",
                                                  "27-old-plugin.conflist"]
    assert 'failed to find plugin "nosuch" in path [' in skipped[0]
    assert "network type not found" in skipped[1]
    assert "error parsing configuration list" in skipped[2]
    assert 'unsupported cniVersion "9.9.9"' in skipped[3]
    assert 'plugin type="old" does not support config version "0.3.1"' in skipped[4]
    assert c.status() == cni.NetworkStatus(True)
    # each plugin binary was asked its versions once, however often status() polls
    c.status()
    asked = (env.tmp / "calls.jsonl.versions").read_text().split()
    assert sorted(asked) == ["fa", "fb", "loopback", "old"]


def test_no_valid_config_is_not_ready_and_says_why(env):
    c = env.client()
    st = c.status()
    assert not st.ready and st.reason == "NetworkPluginNotReady"
    assert st.message.startswith("Network plugin returns error: cni plugin not initialized; no valid network config in ")
    env.write("10-a.conflist", conflist(plugins=[]))
    st = c.status()
    assert not st.ready and "10-a.conflist: error parsing configuration list: no plugins in list" in st.message
    with pytest.raises(cni.NotInitialized):
        c.setup("c1", "/run/netns/x")
    assert CNI(conf_dir=str(env.tmp / "does-not-exist")).load() == (None, [])
    (env.tmp / "a-file").write_text("")
    st = CNI(conf_dir=str(env.tmp / "a-file")).status()
    assert not st.ready and st.message.endswith("a-file: Not a directory")


def test_loopback_plugin_missing_is_not_ready(env):
    env.write("10-a.conflist", conflist())
    os.unlink(os.path.join(env.bin_dir, "loopback"))
    assert not env.client().status().ready
    assert env.client(loopback=False).status().ready


def test_conf_file_becomes_a_one_plugin_list(env):
    env.write("10-one.conf", {"cniVersion": "0.4.0", "name": "single", "type": "fa", "bridge": "b0"})
    net = env.client().network()
    assert (net.name, net.cni_version, len(net.plugins)) == ("single", "0.4.0", 1)
    assert net.plugins[0]["bridge"] == "b0"


@pytest.mark.parametrize("body, words", [
    ({"cniVersion": "1.0.0", "plugins": [{"type": "fa"}]}, "no name"),
    ({"cniVersion": "1.0.0", "name": 5, "plugins": [{"type": "fa"}]}, "invalid name type"),
    ({"cniVersion": "1.0.0", "name": "a b", "plugins": [{"type": "fa"}]}, "invalid characters found in network name"),
    ({"cniVersion": "1.0.0", "name": "n"}, "no 'plugins' key"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": {}}, "invalid 'plugins' type"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": ""}]}, "missing 'type'"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../../bin/sh"}]}, "invalid plugin type"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "fa", "capabilities": ["x"]}]}, "capabilities"),
    ({"cniVersion": 1, "name": "n", "plugins": [{"type": "fa"}]}, "invalid cniVersion type"),
    ({"name": "n", "plugins": [{"type": "fa"}]}, "no cniVersion"),
    ({"cniVersion": "1.1.0", "name": "n", "plugins": [{"type": "fa"}]}, 'unsupported cniVersion "1.1.0"'),
    ({"cniVersion": "1.0.0", "name": "n", "disableCheck": "maybe", "plugins": [{"type": "fa"}]}, "disableCheck"),
])
def test_bad_conflists(body, words):
    with pytest.raises(cni.CNIError) as ei:
        cni.parse_conflist(json.dumps(body).encode())
    assert words in ei.value.message


def test_cni_versions_picks_the_highest_spoken():
    lst = cni.parse_conflist(json.dumps({"cniVersion": "0.3.1", "cniVersions": ["0.4.0", "1.0.0", "2.0.0"],
                                         "name": "n", "disableCheck": "true",
                                         "plugins": [{"type": "fa"}]}).encode())
    assert lst.cni_version == "1.0.0" and lst.disable_check


# ------------------------------------------------------------------ ADD

def test_add_runs_the_chain_with_env_and_injected_config(env):
    env.write("10-a.conflist", conflist(plugins=[
        {"type": "fa", "result": RESULT_100, "capabilities": {"portMappings": True, "bandwidth": False}},
        {"type": "fb", "name": "ignored", "cniVersion": "0.1.0",
         "capabilities": {"portMappings": True, "bandwidth": True, "dns": True, "ips": True, "mac": True}},
    ]))
    c = env.client()
    res = c.setup("cid1", "/run/netns/p1", "eth0", args={"K8S_POD_NAMESPACE": "ns", "K8S_POD_NAME": "p"},
                  port_mappings=[PortMapping(8080, 80), PortMapping(53, 53, "UDP", "127.0.0.1")],
                  dns=DNSConfig(("10.0.0.10",), ("svc",), ("ndots:5",)), bandwidth=Bandwidth(1000, 2000, 3000, 4000),
                  ips=["10.88.0.9"], mac="aa:aa:aa:aa:aa:aa")
    calls = env.calls()
    assert [(x["type"], x["cmd"]) for x in calls] == [("loopback", "ADD"), ("fa", "ADD"), ("fb", "ADD")]
    lo, fa, fb = calls
    assert lo["env"]["CNI_IFNAME"] == "lo" and lo["conf"]["name"] == "cni-loopback"
    assert lo["conf"]["cniVersion"] == "0.3.1" and "runtimeConfig" not in lo["conf"]
    assert fa["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "cid1", "CNI_NETNS": "/run/netns/p1",
                         "CNI_IFNAME": "eth0", "CNI_PATH": f"{env.tmp / 'empty-bin'}:{env.bin_dir}",
                         "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"}
    assert fa["conf"]["name"] == "podnet" and fa["conf"]["cniVersion"] == "1.0.0"
    assert "prevResult" not in fa["conf"]
    pm = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
          {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]
    assert fa["conf"]["runtimeConfig"] == {"portMappings": pm}
    # the list's name and version win over the plugin's own; prevResult is fa's result
    assert fb["conf"]["name"] == "podnet" and fb["conf"]["cniVersion"] == "1.0.0"
    assert fb["conf"]["prevResult"]["ips"] == RESULT_100["ips"]
    assert fb["conf"]["runtimeConfig"] == {
        "portMappings": pm, "dns": {"servers": ["10.0.0.10"], "searches": ["svc"], "options": ["ndots:5"]},
        "bandwidth": {"ingressRate": 1000, "ingressBurst": 2000, "egressRate": 3000, "egressBurst": 4000},
        "ips": ["10.88.0.9"], "mac": "aa:aa:aa:aa:aa:aa"}
    # the result is the last plugin's
    assert res.raw["seen"] == ["fa", "fb"]
    assert [i.address for i in res.ips_of("eth0")] == ["10.88.0.5/16", "fd00::5/64"]
    assert res.ips[0].ip == "10.88.0.5" and res.ips[0].gateway == "10.88.0.1"
    assert res.routes[1] == cni.Route("10.0.0.0/8", "10.88.0.254")
    assert res.dns.nameservers == ("10.96.0.10",) and res.dns.search == ("svc.cluster.local",)
    assert res.ips_of("cni0") == [] and res.ips_of("nope") == []


def test_result_cache_is_libcnis(env):
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa", "result": RESULT_100}]))
    c = env.client()
    c.setup("cid1", "/run/netns/p1", args={"IgnoreUnknown": "0"}, port_mappings=[PortMapping(1, 2)])
    path = env.cache_dir / "results" / "podnet-cid1-eth0"
    entry = json.loads(path.read_text())
    assert entry["kind"] == "cniCacheV1" and entry["containerId"] == "cid1" and entry["ifName"] == "eth0"
    assert entry["networkName"] == "podnet"
    assert json.loads(base64.b64decode(entry["config"]))["name"] == "podnet"
    assert entry["cniArgs"] == [["IgnoreUnknown", "0"]]
    assert entry["capabilityArgs"] == {"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]}
    assert entry["result"]["ips"] == RESULT_100["ips"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert (env.cache_dir / "results" / "cni-loopback-cid1-lo").exists()
    # a new client (a restarted daemon) reads it
    again = CNI([env.bin_dir], str(env.tmp / "gone"), str(env.cache_dir))
    assert again.cached_result("cid1").ips_of("eth0")[0].address == "10.88.0.5/16"
    assert again.cached_result("other") is None


def test_failed_add_is_rolled_back_and_the_error_parsed(env):
    err = {"cniVersion": "1.0.0", "code": 11, "msg": "try again", "details": "the lock is busy"}
    # fc's DEL fails too: the undo of a failed ADD runs every DEL all the same
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa"}, {"type": "fb", "failOn": "ADD", "error": err},
                                                 {"type": "fc", "failDel": True, "error": {"code": 5, "msg": "x"}}]))
    c = env.client()
    with pytest.raises(cni.PluginError) as ei:
        c.setup("cid1", "/run/netns/p1")
    e = ei.value
    assert (e.code, e.msg, e.details, e.command) == (11, "try again", "the lock is busy", "ADD")
    assert e.message == 'plugin type="fb" failed (add): try again; the lock is busy'
    assert e.status == 500
    calls = [(x["type"], x["cmd"]) for x in env.calls()]
    assert calls == [("loopback", "ADD"), ("fa", "ADD"), ("fb", "ADD"),
                     ("fc", "DEL"), ("fb", "DEL"), ("fa", "DEL"), ("loopback", "DEL")]
    assert not list((env.cache_dir / "results").iterdir())


@pytest.mark.parametrize("stdout, stderr, code, words", [
    (b"", b"", 5, "netplugin failed with no error message: exit status 1"),
    (b"", b"boom\n", 5, "netplugin failed: 'boom'"),
    (b"oops", b"", 6, "netplugin failed but error parsing its diagnostic message 'oops'"),
    (b'{"code": 7, "msg": "bad config"}', b"", 7, "bad config"),
])
def test_plugin_error_parsing(stdout, stderr, code, words):
    got_code, msg, _details = cni.plugin_error(1, stdout, stderr)
    assert got_code == code and msg.startswith(words)


def test_stderr_only_failure(env):
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa", "failOn": "ADD", "stderrOnly": True}]))
    with pytest.raises(cni.PluginError) as ei:
        env.client(loopback=False).setup("cid1", "/run/netns/p1")
    assert ei.value.message == "plugin type=\"fa\" failed (add): netplugin failed: 'boom on stderr'"


@pytest.mark.parametrize("cid, ifname, words", [
    ("", "eth0", "missing containerID"),
    ("-bad", "eth0", "invalid characters in containerID"),
    ("c1", "", "interface name is empty"),
    ("c1", "a" * 16, "interface name is too long"),
    ("c1", "..", "interface name is . or .."),
    ("c1", "a:b", "interface name contains / or : or whitespace characters"),
])
def test_bad_ids_run_nothing(env, cid, ifname, words):
    env.write("10-a.conflist", conflist())
    with pytest.raises(cni.CNIError) as ei:
        env.client().setup(cid, "/run/netns/p1", ifname)
    assert ei.value.msg == words
    assert env.calls() == []


def test_bad_args_run_nothing(env):
    env.write("10-a.conflist", conflist())
    with pytest.raises(cni.CNIError, match="invalid CNI_ARGS"):
        env.client().setup("c1", "/run/netns/p1", args={"A": "x;B=y"})
    assert env.calls() == []


# ------------------------------------------------------------------ DEL / CHECK

def test_del_is_reverse_with_the_cached_result_config_and_args(env):
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa", "result": RESULT_100}, {"type": "fb"}]))
    c = env.client()
    c.setup("cid1", "/run/netns/p1", args={"K8S_POD_NAME": "p"}, port_mappings=[PortMapping(8080, 80)])
    env.calls()
    # the conf dir changes meanwhile: DEL still runs what ADD ran, with its args
    for f in env.conf_dir.iterdir():
        f.unlink()
    env.write("10-other.conflist", conflist(name="other", plugins=[{"type": "fc"}]))
    restarted = env.client()
    restarted.teardown("cid1", "/run/netns/p1")
    calls = env.calls()
    assert [(x["type"], x["cmd"]) for x in calls] == [("fb", "DEL"), ("fa", "DEL"), ("loopback", "DEL")]
    fb = calls[0]
    assert fb["conf"]["name"] == "podnet"
    assert fb["conf"]["prevResult"]["ips"] == RESULT_100["ips"] and fb["conf"]["prevResult"]["seen"] == ["fa", "fb"]
    assert fb["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=p"
    assert "runtimeConfig" not in fb["conf"]    # fb asks for no capability
    assert "prevResult" not in calls[2]["conf"]   # loopback's list is 0.3.1: no prevResult on DEL
    assert not list((env.cache_dir / "results").iterdir())
    # again: nothing cached, today's config, no prevResult, no error
    restarted.teardown("cid1", "/run/netns/p1")
    calls = env.calls()
    assert [(x["type"], x["cmd"]) for x in calls] == [("fc", "DEL"), ("loopback", "DEL")]
    assert "prevResult" not in calls[0]["conf"]


def test_loopback_del_gets_no_prev_result_below_040(env):
    env.write("10-a.conflist", conflist(version="0.3.1", plugins=[{"type": "fa", "result": RESULT_100}]))
    c = env.client()
    c.setup("cid1", "/run/netns/p1")
    env.calls()
    c.teardown("cid1", "/run/netns/p1")
    calls = env.calls()
    assert all("prevResult" not in x["conf"] for x in calls)


def test_failed_del_keeps_the_cache_for_a_retry(env):
    err = {"code": 5, "msg": "netns busy"}
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa", "result": RESULT_100, "failOn": "DEL", "error": err}]))
    c = env.client()
    c.setup("cid1", "/run/netns/p1")
    with pytest.raises(cni.PluginError, match=r'plugin type="fa" failed \(del\): netns busy'):
        c.teardown("cid1", "/run/netns/p1")
    assert (env.cache_dir / "results" / "podnet-cid1-eth0").exists()


def test_teardown_with_nothing_configured_or_cached_is_a_no_op(env):
    env.client(loopback=False).teardown("cid1", "/run/netns/p1")
    assert env.calls() == []


def test_check_passes_the_cached_result(env):
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa", "result": RESULT_100}, {"type": "fb"}]))
    c = env.client()
    c.setup("cid1", "/run/netns/p1")
    env.calls()
    c.check("cid1", "/run/netns/p1")
    calls = env.calls()
    assert [(x["type"], x["cmd"]) for x in calls] == [("fa", "CHECK"), ("fb", "CHECK")]
    assert all(x["conf"]["prevResult"]["ips"] == RESULT_100["ips"] for x in calls)


def test_check_needs_040_and_honours_disable_check(env):
    env.write("10-a.conflist", conflist(version="0.3.1"))
    c = env.client()
    with pytest.raises(cni.CNIError, match='configuration version "0.3.1" does not support the CHECK command'):
        c.check("cid1", "/run/netns/p1")
    env.write("10-a.conflist", conflist(disableCheck=True))
    c.check("cid1", "/run/netns/p1")
    assert env.calls() == []


# ------------------------------------------------------------------ results

def test_results_of_every_version():
    r = cni.parse_result({"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": "/n"}],
                          "ips": [{"version": "4", "address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 0}]})
    assert r.ips_of("eth0") == [cni.IPConfig("10.1.0.2/24", "10.1.0.1", 0)]
    legacy = cni.parse_result({"cniVersion": "0.2.0",
                               "ip4": {"ip": "10.2.0.2/16", "gateway": "10.2.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
                               "dns": {"nameservers": ["1.1.1.1"]}})
    assert legacy.ips == (cni.IPConfig("10.2.0.2/16", "10.2.0.1", None),)
    assert legacy.routes == (cni.Route("0.0.0.0/0"),) and legacy.dns.nameservers == ("1.1.1.1",)
    with pytest.raises(cni.CNIError):
        cni.parse_result(["not", "a", "result"])


def test_convert_result_between_versions():
    down = cni.convert_result(RESULT_100, "0.4.0")
    assert down["cniVersion"] == "0.4.0" and [ip["version"] for ip in down["ips"]] == ["4", "6"]
    up = cni.convert_result(down, "1.0.0")
    assert up["ips"] == RESULT_100["ips"] and up["cniVersion"] == "1.0.0"
    assert cni.convert_result({"cniVersion": "0.2.0", "ip4": {"ip": "10.2.0.2/16"}}, "1.0.0")["ips"] == [
        {"address": "10.2.0.2/16"}]
    with pytest.raises(cni.CNIError):
        cni.convert_result(RESULT_100, "0.2.0")


def test_a_broken_cache_entry_falls_back_to_todays_config(env):
    env.write("10-a.conflist", conflist(plugins=[{"type": "fa"}]))
    results = env.cache_dir / "results"
    results.mkdir(parents=True)
    (results / "podnet-cid1-eth0").write_text("{not json")
    (results / "old-cid1-eth0").write_text(json.dumps({"kind": "cniCacheV1", "containerId": "cid1", "ifName": "eth0",
                                                       "networkName": "old", "config": ["nope"], "cniArgs": [1]}))
    env.client().teardown("cid1", "/run/netns/p1")
    calls = env.calls()
    assert [(x["type"], x["cmd"]) for x in calls] == [("fa", "DEL"), ("loopback", "DEL")]
    assert "prevResult" not in calls[0]["conf"]
    with pytest.raises(cni.CNIError, match="invalid characters in containerID"):
        env.client().cached_result("../x")
