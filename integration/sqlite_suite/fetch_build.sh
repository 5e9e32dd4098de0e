#!/bin/sh
# Downloads Debian's source package of the system's SQLite and builds its
# TCL test harness, testfixture, with our SQLITE_EXTRA_INIT hook
# (bottomless_init.c). Safe to call twice: what is there is reused.
#
#   fetch_build.sh WORKDIR      prints the path of the source tree
#
# Needs root (or sudo) only to install missing packages (tcl-dev); the
# source download leaves the system's apt configuration alone: the deb-src
# entry, the package lists and apt's cache live in WORKDIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: fetch_build.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)

version=$(dpkg-query -W -f '${source:Version}' libsqlite3-0 2>/dev/null || true)
if [ -z "$version" ]; then
    echo "fetch_build.sh: libsqlite3-0 is not installed; the suite tests the system's SQLite" >&2
    exit 2
fi
src="$work/src-$version"

need=""
dpkg-query -W -f '${Status}' tcl-dev 2>/dev/null | grep -q 'ok installed' || need="$need tcl-dev"
command -v cc >/dev/null 2>&1 || need="$need build-essential"
command -v dpkg-source >/dev/null 2>&1 || need="$need dpkg-dev"
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "fetch_build.sh: need root to run: $*" >&2; return 1
    fi
}
if [ -n "$need" ]; then
    echo "fetch_build.sh: installing$need" >&2
    as_root apt-get update -qq >&2
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi

if [ ! -f "$src/test/tester.tcl" ]; then
    # A private sources list: the system's apt configuration is untouched.
    apt_dir="$work/apt"
    mkdir -p "$apt_dir/sources" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/download"
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    cat >"$apt_dir/sources/debian-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$apt_dir/sources -o Dir::State::Lists=$apt_dir/lists -o Dir::Cache=$apt_dir/cache"
    # shellcheck disable=SC2086
    apt-get -qq $apt_opts update >&2
    # shellcheck disable=SC2086
    (cd "$work/download" && apt-get -qq $apt_opts source --download-only "sqlite3=$version" >&2)
    rm -rf "$src.tmp"
    dpkg-source --no-check -x "$work/download"/sqlite3_*.dsc "$src.tmp" >&2
    mv "$src.tmp" "$src"
fi

hook="$here/bottomless_init.c"
build="$src/build-bottomless"
if [ ! -x "$build/testfixture" ] || [ "$hook" -nt "$build/testfixture" ]; then
    mkdir -p "$build"
    tcl_config=$(dirname "$(ls /usr/lib/tcl8.*/tclConfig.sh /usr/lib/*/tcl8.*/tclConfig.sh 2>/dev/null | head -n1)")
    (cd "$build" && { [ -f Makefile ] || ../configure --with-tcl="$tcl_config" --disable-shared >&2; } \
        && rm -f testfixture \
        && make -j2 sqlite3.c >&2 \
        && make testfixture OPTS="-DSQLITE_EXTRA_INIT=bottomless_suite_init" \
            LTLINK_EXTRAS="$hook" >&2)
fi
echo "$src"
