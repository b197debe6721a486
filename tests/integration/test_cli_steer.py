"""Our CLI: events, pause/unpause, update, system df, system prune."""
from __future__ import annotations

import json

from conftest import unique_name


def test_dockyard_events_pause_update(daemon, bb_image):
    name = unique_name()
    daemon.dockyard("run", "-d", "--name", name, "bb", "sleep", "100")
    try:
        assert daemon.dockyard("pause", name).stdout == name + "\n"
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "paused"
        r = daemon.dockyard("pause", name, check=False)
        assert r.returncode == 1 and "is already paused" in r.stderr
        assert daemon.dockyard("unpause", name).stdout == name + "\n"
        assert daemon.dockyard("update", "--restart", "on-failure:2", "--cpu-shares", "256", name).stdout == name + "\n"
        hc = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig}}", name).stdout)
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2} and hc["CpuShares"] == 256
        r = daemon.dockyard("update", name, check=False)
        assert r.returncode != 0 and "you must provide one or more flags" in r.stderr
        out = daemon.dockyard("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                              "--format", "{{.Action}}").stdout.split()
        assert out == ["create", "start", "pause", "unpause", "update"]
        line = daemon.dockyard("events", "--since", "1m", "--until", "0s", "--filter", f"container={name}",
                               "--filter", "event=pause").stdout.strip()
        assert f" container pause {daemon.docker('inspect', '-f', '{{.Id}}', name).stdout.strip()} (" in line
        assert f"name={name}" in line
        r = daemon.dockyard("events", "--filter", "nope=1", "--until", "0s", check=False)
        assert r.returncode != 0 and "invalid filter 'nope'" in r.stderr
    finally:
        daemon.docker("rm", "-f", name)


def test_dockyard_system_df_and_prune(daemon, bb_image):
    name = unique_name()
    daemon.docker("run", "--name", name, "bb", "sh", "-c", "head -c 100000 /dev/zero > /f")
    out = daemon.dockyard("system", "df").stdout.splitlines()
    assert out[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    ours = {l.split()[0]: l for l in out[1:]}
    theirs = {l.split()[0]: l for l in daemon.docker("system", "df").stdout.splitlines()[1:]}
    assert ours["Images"].split() == theirs["Images"].split()
    assert ours["Containers"].split()[:2] == theirs["Containers"].split()[:2]
    def tables(out):       # section titles and column headers of `system df -v`
        return [l.split() for l in out.splitlines() if l.endswith(":") or l.startswith(("REPOSITORY", "CONTAINER ID",
                                                                                     "VOLUME NAME", "CACHE ID"))]
    assert tables(daemon.dockyard("system", "df", "-v").stdout) == tables(daemon.docker("system", "df", "-v").stdout)
    r = daemon.dockyard("system", "prune", "-f").stdout
    assert "Deleted Containers:" in r and "Total reclaimed space:" in r
    assert daemon.docker("ps", "-aq", "--filter", f"name={name}").stdout == ""
