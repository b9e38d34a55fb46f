#!/usr/bin/env bash
# Builds the gateway for release and installs a stripped copy: the release binary is about 130 MB,
# nearly all of it debug info; stripped it is about 32 MB.
#
#   scripts/install.sh                      into /usr/local/bin
#   scripts/install.sh ~/bin                into another directory (or PREFIX=~/bin scripts/install.sh)
#   scripts/install.sh DIR --static-swift-stdlib    further arguments go to `swift build`
#
# The binary links the Swift runtime from the toolchain it was built with (its RUNPATH names the
# toolchain's lib directory), so it runs where that toolchain is installed; built with
# --static-swift-stdlib (95 MB stripped) it needs only the system's libc, libstdc++ and zlib. It
# replaces an installed copy in one rename, so a running gateway keeps its file.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=${PREFIX:-/usr/local/bin}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    dest=$1
    shift
fi
build=(swift build -c release --product switchyard "$@")

command -v strip >/dev/null || { echo "install: no strip (binutils) on PATH" >&2; exit 1; }
"${build[@]}"
built="$("${build[@]}" --show-bin-path)/switchyard"
[ -x "$built" ] || { echo "install: $built was not built" >&2; exit 1; }

mkdir -p "$dest"
staged=$(mktemp "$dest/.switchyard.XXXXXX")
trap 'rm -f "$staged"' EXIT
strip -o "$staged" "$built"
chmod 755 "$staged"
mv -f "$staged" "$dest/switchyard"
trap - EXIT

size() { numfmt --to=iec-i --suffix=B "$(stat -c %s "$1")" 2>/dev/null || stat -c '%s bytes' "$1"; }
echo "installed $dest/switchyard: $(size "$dest/switchyard") ($(stat -c %s "$dest/switchyard") bytes; unstripped $(size "$built"))"
"$dest/switchyard" --help >/dev/null  # it runs
