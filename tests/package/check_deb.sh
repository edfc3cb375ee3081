#!/usr/bin/env bash
# check_deb.sh: the .deb works for a user. Builds it (`cmake --workflow --preset package`), fails
# if `dpkg-deb -c` lacks a path the package must have (or has one it must not), checks its
# control fields, unpacks it into a scratch root with `dpkg -x`, and builds and runs the
# find_package and pkg-config consumers of tests/consumer against that root alone. Installs
# nothing on the machine. Usage: tests/package/check_deb.sh (CI runs it; about a minute).
#
# The scratch root needs no flag for pkg-config: background.pc finds its prefix from its own
# place (${pcfiledir}/../../..), so <root>/usr/lib/<multiarch>/pkgconfig/background.pc points
# at <root>/usr. (`pkg-config --define-prefix` would not do: it takes the prefix to be the
# folder above the one above pkgconfig, <root>/usr/lib with a multiarch libdir. Nor is
# PKG_CONFIG_SYSROOT_DIR needed; Debian's pkgconf does not prefix paths already under it.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build/package
cd "$root"

fail() { echo "check_deb: $*" >&2; exit 1; }

rm -f "$build"/background_*.deb
cmake --workflow --preset package

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
version=$(cache CMAKE_PROJECT_VERSION)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
arch=$(dpkg --print-architecture)
deb=$build/background_${version}_${arch}.deb
[[ -f $deb ]] || fail "no $deb; the package step made: $(ls "$build"/*.deb 2>/dev/null)"
echo "check_deb: $deb"

# The contents: every public header, the static library, the CMake package, the pkg-config
# file, the licence and the changelog; not the test-only header.
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
expected=(
  "usr/$libdir/libbackground.a"
  "usr/$libdir/cmake/background/background-config.cmake"
  "usr/$libdir/cmake/background/background-config-version.cmake"
  "usr/$libdir/cmake/background/background-targets.cmake"
  "usr/$libdir/cmake/background/background-targets-release.cmake"
  "usr/$libdir/pkgconfig/background.pc"
  "usr/share/doc/background/copyright"
  "usr/share/doc/background/changelog.gz")
for header in include/background/*.hpp include/background/detail/*.hpp; do
  [[ $header == */testing.hpp ]] || expected+=("usr/$header")
done
for path in "${expected[@]}"; do
  grep -qxF "./$path" <<<"$contents" || fail "the package lacks /$path"
done
! grep -q "testing.hpp" <<<"$contents" || fail "the package has the test-only testing.hpp"
echo "check_deb: the ${#expected[@]} expected files are there"

# The control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == background ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), not $version"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture), not $arch"
[[ $(field Section) == libdevel ]] || fail "Section: $(field Section)"
for name in Maintainer Description Depends; do
  [[ -n $(field "$name") ]] || fail "no $name field"
done
dpkg-deb -I "$deb" control

# Unpacked into a scratch root: the licence and changelog are this tree's.
scratch=$build/check
rm -rf "$scratch" && mkdir -p "$scratch"
dpkg -x "$deb" "$scratch/root"
usr=$scratch/root/usr
cmp LICENSE "$usr/share/doc/background/copyright" || fail "copyright is not LICENSE"
gzip -dc "$usr/share/doc/background/changelog.gz" | cmp - CHANGELOG.md ||
  fail "changelog.gz is not CHANGELOG.md"

# The find_package consumer, with CMAKE_PREFIX_PATH at the scratch root; the package it found
# must be that one, not one installed on the machine.
cmake -S tests/consumer/find_package -B "$scratch/find_package" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$usr"
found=$(sed -n 's/^background_DIR:PATH=//p' "$scratch/find_package/CMakeCache.txt")
[[ $found == "$usr"/* ]] || fail "find_package found $found, not the scratch root's"
cmake --build "$scratch/find_package"
"$scratch/find_package/consumer"

# The pkg-config consumer, with its plain Makefile; pkg-config searches the scratch root only.
pc_dir=$usr/$libdir/pkgconfig
mkdir -p "$scratch/pkg_config"
cflags=$(PKG_CONFIG_LIBDIR=$pc_dir pkg-config --cflags background)
[[ $cflags == "-I$pc_dir/"* ]] || fail "pkg-config gave $cflags, not the scratch root's headers"
PKG_CONFIG_PATH=$pc_dir PKG_CONFIG_LIBDIR=$pc_dir \
  make -C "$scratch/pkg_config" -f "$root/tests/consumer/pkg_config/Makefile"
"$scratch/pkg_config/consumer"

echo "check_deb: $(basename "$deb") is complete, and both consumers build and run from it"
