#!/bin/sh
# build-base-image.sh: the Debian base image every kit image starts FROM, made without a registry:
# debootstrap (minbase) from a Debian mirror, then `docker import`. Cached twice: the rootfs
# tarball in $VKC_KIT_CACHE (so a fresh engine re-imports without the network) and the image,
# tagged <image>-<key> (key: hash of the recipe; also label vkc.base.key). A second run builds nothing.
#
#   kit/images/build-base-image.sh            -> prints the image reference (vkc/debian:bookworm)
#
# Environment: VKC_BASE_SUITE (bookworm), VKC_BASE_MIRROR (http://deb.debian.org/debian),
#              VKC_BASE_INCLUDE (ca-certificates), VKC_BASE_IMAGE (vkc/debian:<suite>),
#              VKC_KIT_CACHE (~/.cache/vault-k8s-conformance/kit).
# Needs root (debootstrap), docker.
set -eu

suite=${VKC_BASE_SUITE:-bookworm}
mirror=${VKC_BASE_MIRROR:-http://deb.debian.org/debian}
include=${VKC_BASE_INCLUDE:-ca-certificates}
image=${VKC_BASE_IMAGE:-vkc/debian:$suite}
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
cache=$VKC_KIT_CACHE
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

fail() { echo "build-base-image: $*" >&2; exit 1; }

# The recipe is the identity: same suite, variant, packages and arch -> same key.
key=$(printf 'minbase %s %s %s v1' "$suite" "$arch" "$include" | sha256sum | cut -c1-16)

# The keyed tag is the identity (not the label alone: images built FROM this one inherit it).
keyed=$image-$key
if docker image inspect "$keyed" >/dev/null 2>&1; then
  docker tag "$keyed" "$image"
  echo "$image"
  exit 0
fi

mkdir -p "$cache"
tarball="$cache/debian-$suite-$arch-$key.tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 || fail "no debootstrap (apt-get install debootstrap)"; }
  root=$(mktemp -d /tmp/vkc-rootfs-XXXXXX)
  trap 'rm -rf "$root" "$tarball.part"' EXIT INT TERM
  nice -n 19 debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$root" "$mirror" \
    >"$cache/debootstrap-$key.log" 2>&1 || fail "debootstrap failed: $(tail -n 1 "$cache/debootstrap-$key.log")"
  # Nothing a container needs: package caches and lists, logs.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/debootstrap
  tar --numeric-owner -C "$root" -cf "$tarball.part" . && mv -f "$tarball.part" "$tarball"
  rm -rf "$root"
  trap - EXIT INT TERM
fi

docker import \
  -c "LABEL vkc.base.key=$key vkc.base.recipe=\"debootstrap minbase $suite $arch +$include\"" \
  -c 'CMD ["/bin/bash"]' \
  "$tarball" "$keyed" >/dev/null || fail "docker import $tarball failed"
docker tag "$keyed" "$image"
echo "$image"
