#!/bin/sh
# build-rootfs.sh: the Debian userland of the kit's kind node image, as a tarball: debootstrap
# (minbase) plus the packages kind's own base image installs (images/base/Dockerfile of
# sigs.k8s.io/kind), minus the rootless/storage-test extras. Debian bookworm, not kind's trixie:
# bookworm's systemd 252 boots on a cgroup v1 host; trixie's 257 deprecates cgroup v1 and 258
# removed it.
#
#   kit/node-image/build-rootfs.sh        -> prints the tarball path
#
# Cached: $VKC_KIT_CACHE/node/rootfs-<suite>-<key>.tar, key = hash of suite + package list.
# Needs root and debootstrap. Environment: VKC_NODE_SUITE (bookworm), VKC_BASE_MIRROR.
set -eu

suite=${VKC_NODE_SUITE:-bookworm}
mirror=${VKC_BASE_MIRROR:-http://deb.debian.org/debian}
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
cache=$VKC_KIT_CACHE/node
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
# kind v0.33.0 installs: systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod
# libseccomp2 pigz fuse-overlayfs nfs-common open-iscsi e2fsprogs bash ca-certificates curl jq procps.
# Left out: fuse-overlayfs (rootless only), nfs-common and open-iscsi (storage e2e tests).
packages=${VKC_NODE_PACKAGES:-systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps}

fail() { echo "build-rootfs: $*" >&2; exit 1; }

key=$(printf 'node-rootfs %s %s %s v1' "$suite" "$arch" "$packages" | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-$arch-$key.tar
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi

command -v debootstrap >/dev/null 2>&1 || fail "no debootstrap (apt-get install debootstrap)"
mkdir -p "$cache"
root=$(mktemp -d /tmp/vkc-node-rootfs-XXXXXX)
trap 'rm -rf "$root" "$tarball.part"' EXIT INT TERM
nice -n 19 debootstrap --variant=minbase --arch="$arch" --include="$packages" "$suite" "$root" "$mirror" \
  >"$cache/debootstrap-$key.log" 2>&1 || fail "debootstrap failed: $(tail -n 1 "$cache/debootstrap-$key.log") (log: $cache/debootstrap-$key.log)"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/debootstrap
nice -n 19 tar --numeric-owner -C "$root" -cf "$tarball.part" . && mv -f "$tarball.part" "$tarball"
echo "$tarball"
