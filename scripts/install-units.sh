#!/usr/bin/env bash
# Render contrib/systemd's dockyard.service and dockyard.socket for a daemon
# binary and put them into a unit directory.
#
#   scripts/install-units.sh DOCKYARDD [UNIT_DIR]   (default /etc/systemd/system)
#
# scripts/install.sh runs it where systemd is the init; it enables nothing:
#   systemctl enable --now dockyard.socket    # the first connection starts the daemon
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockyardd=${1:?usage: install-units.sh DOCKYARDD [UNIT_DIR]}
dir=${2:-/etc/systemd/system}
mkdir -p "$dir"
for unit in dockyard.service dockyard.socket; do
    sed "s|@DOCKYARDD@|$dockyardd|g" "$repo/contrib/systemd/$unit" > "$dir/$unit.tmp"
    chmod 644 "$dir/$unit.tmp"
    mv "$dir/$unit.tmp" "$dir/$unit"
done
echo "==> systemd units: $dir/dockyard.service, $dir/dockyard.socket"
