#!/usr/bin/env bash
# Installs Lmod onto a library volume, as a site would build it for the
# volume's mount path: Debian's lmod package files (unpacked by images.sh)
# relocated from /usr/share/lmod to PREFIX/lmod/lmod, and configured
# without the Tcl interpreter (its modulefiles are Lua; the notebook image
# has lua and its modules, not Tcl).
#
#   install-lmod.sh UNPACKED_DEB DEST PREFIX
#
# UNPACKED_DEB: the lmod/ directory of images.sh's output; DEST: the
# volume's directory on this machine; PREFIX: where the volume is mounted
# in notebooks (the Library's mountPath).
set -euo pipefail
deb="$1" dest="$2" prefix="$3"
src="$(echo "$deb"/usr/share/lmod/[0-9]*)"
[[ -d "$src/libexec" ]] || { echo "install-lmod: no Lmod under $deb/usr/share/lmod" >&2; exit 1; }
mkdir -p "$dest/lmod"
rm -rf "$dest/lmod/lmod"
cp -a "$src" "$dest/lmod/lmod"
rm -rf "$dest/lmod/lmod/lib" # tcl2lua.so, linked against libtcl
version="${src##*/}"
grep -rlZ -e /usr/share/lmod -e /usr/lib/lmod "$dest/lmod/lmod" | xargs -0 -r sed -i \
    -e "s|/usr/share/lmod/lmod|$prefix/lmod/lmod|g" \
    -e "s|/usr/share/lmod/$version|$prefix/lmod/lmod|g" \
    -e "s|/usr/lib/lmod/$version/lib|$prefix/lmod/lmod/lib|g" \
    -e "s|/usr/share/lmod|$prefix/lmod|g"
sed -i '/name *= *"LMOD_FAST_TCL_INTERP"/{n;s/sedV = "yes"/sedV = "no"/}' "$dest/lmod/lmod/libexec/myGlobals.lua"
grep -q 'sedV = "no"' "$dest/lmod/lmod/libexec/myGlobals.lua"
