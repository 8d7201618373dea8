#!/usr/bin/env bash
# Builds vigil's .deb from the committed tree (plus uncommitted changes) in a scratch copy, so
# dpkg-buildpackage never writes beside the checkout. Prints the path of the .deb.
# Usage: scripts/build-deb.sh [OUTDIR]   (default OUTDIR: build-deb/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian
out=$(realpath -m "${1:-build-deb}")
version=$(dpkg-parsechangelog -S Version)
scratch=$(mktemp -d /tmp/vigil-deb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
src="$scratch/vigil-$version"
mkdir -p "$src" "$out"
# Every tracked file as it is in the work tree (no build directories, no caches).
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$out/build.log" 2>&1 || {
  tail -n 60 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed; full log in $out/build.log" >&2
  exit 1
}
rm -f "$out"/*.deb
mv "$scratch"/*.deb "$out"/
deb=$(ls "$out"/vigil_*.deb | grep -v dbgsym | head -n 1)
# No lintian errors or warnings; every accepted tag is overridden with its reason in debian/.
lintian --fail-on error,warning "$deb" >&2 2> >(grep -v "running with root privileges" >&2)
echo "$deb"
