#!/bin/sh
# Builds bundles/rootfs: Debian's busybox-static and its applet links (sh, ip, ping, nc, wget,
# httpd, sleep, ...). Every sample bundle and test uses it, read-only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rootfs=${1:-$here/rootfs}
busybox=/bin/busybox
case "$(ldd "$busybox" 2>&1 || true)" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) echo "build-rootfs: $busybox is not static: apt-get install busybox-static" >&2; exit 1 ;;
esac
rm -rf "$rootfs.tmp"
mkdir -p "$rootfs.tmp/bin" "$rootfs.tmp/proc" "$rootfs.tmp/sys" "$rootfs.tmp/dev" \
  "$rootfs.tmp/tmp" "$rootfs.tmp/etc" "$rootfs.tmp/www" "$rootfs.tmp/root"
cp "$busybox" "$rootfs.tmp/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs.tmp/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs.tmp/etc/passwd"
echo 'root:x:0:' > "$rootfs.tmp/etc/group"
echo 'hello from ocinet' > "$rootfs.tmp/www/index.html"
rm -rf "$rootfs"
mv "$rootfs.tmp" "$rootfs"
echo "$rootfs"
