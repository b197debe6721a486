# Sourced by install-criu.sh and install-crun.sh: Debian testing packages
# unpacked into a private prefix, never installed into the system.
#
#   testing_debs_begin NAME SUITE   arch facts ($triplet, $loader), a work dir ($work), and a
#                                   temporary apt source for SUITE, always removed (and
#                                   `apt-get update` run again) when the script exits
#   testing_debs_fetch PKG [EXTRA...]   PKG's Depends closure (plus EXTRA) downloaded into $work
#   testing_debs_unpack DIR         every downloaded .deb unpacked into DIR (dpkg-deb -x)
#
# The caller defines say() and die().

testing_debs_begin() {
    _td_name=$1 _td_suite=$2
    case "$(dpkg --print-architecture)" in
        amd64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2 ;;
        arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
        *) die "unsupported architecture $(dpkg --print-architecture)" ;;
    esac
    # Same mirror and keyring as the system's main Debian source.
    local mirror=http://deb.debian.org/debian keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    _td_src=/etc/apt/sources.list.d/dockyard-$_td_name-$_td_suite.sources
    work=$(mktemp -d)
    trap _testing_debs_cleanup EXIT INT TERM
    say "$_td_name: temporary apt source for Debian $_td_suite ($_td_src)"
    cat > "$_td_src" <<EOT
Types: deb
URIs: $mirror
Suites: $_td_suite
Components: main
Signed-By: $keyring
EOT
    # Never let this suite win for anything: download only, never install from it.
    apt-get update -q >/dev/null
}

_testing_debs_cleanup() {
    local rc=$?
    if [ -e "$_td_src" ]; then
        rm -f "$_td_src"
        apt-get update -q >/dev/null 2>&1 ||
            echo "install-$_td_name.sh: apt-get update after removing $_td_src failed" >&2
    fi
    rm -rf "$work"
    exit $rc
}

testing_debs_fetch() {
    local pkg=$1; shift
    local pkgs
    pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "$pkg/$_td_suite" | grep -E '^[a-z0-9]' | grep -v '^<' | sort -u)
    [ -n "$pkgs" ] || die "no $pkg in $_td_suite"
    pkgs="$pkgs $*"
    say "$_td_name: downloading $(wc -w <<<"$pkgs") packages from $_td_suite"
    ( cd "$work" && for p in $pkgs; do
        # a virtual or arch-less name may not download by itself; its provider is in the list
        apt-get download -q "$p/$_td_suite" >/dev/null 2>&1 || apt-get download -q "$p" >/dev/null 2>&1 ||
            echo "install-$_td_name.sh: skipped $p" >&2
      done )
    ls "$work/${pkg}"_*.deb >/dev/null 2>&1 || die "$pkg .deb did not download"
}

testing_debs_unpack() {
    local deb
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$1"; done
}
