#!/bin/sh
# build-vault-images.sh: Vault and OpenBao images from the binaries the local target already
# provisioned (~/.cache/vault-k8s-conformance/{vault,bao}/<version>/), FROM the kit's Debian base
# (kit/images/build-base-image.sh). No registry, no download.
#
#   kit/images/build-vault-images.sh                      every cached vault and bao version
#   kit/images/build-vault-images.sh vault:1.21.1 openbao:2.7.2
#
# Images: vkc/vault:<version> and vkc/openbao:<version>, also tagged <version>-<key>. Content
# addressed: key = sha256 of (binary sha256, Dockerfile, entrypoint, base image id); the image
# carries it as label vkc.build.key (and the binary's hash as vkc.binary.sha256). When the tag
# <version>-<key> exists, nothing is built (the version tag is pointed at it). Prints one line per image.
#
# Environment: VKC_CACHE_DIR (~/.cache/vault-k8s-conformance), VKC_BASE_IMAGE (built if absent).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
cache=$VKC_CACHE_DIR
ctx_src=$here/vault
export DOCKER_BUILDKIT=0 # Docker 20.10's builder; BuildKit needs buildx, which this CLI may lack

fail() { echo "build-vault-images: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || fail "no docker engine (run kit/docker/install-engine.sh)"
base=${VKC_BASE_IMAGE:-$("$here/build-base-image.sh")}
base_id=$(docker image inspect --format '{{.Id}}' "$base" 2>/dev/null) || fail "base image $base not found"

# Targets: flavor:version pairs.
if [ $# -eq 0 ]; then
  for d in "$cache"/vault/*/ "$cache"/bao/*/; do
    [ -f "$d.complete" ] || continue
    v=$(basename "$d")
    case "$d" in "$cache"/bao/*) set -- "$@" "openbao:$v" ;; *) set -- "$@" "vault:$v" ;; esac
  done
  [ $# -gt 0 ] || fail "no provisioned vault or bao binaries under $cache (run the local target once, or npm run provision)"
fi

ctx_hash=$(cat "$ctx_src/Dockerfile" "$ctx_src/docker-entrypoint.sh" | sha256sum | cut -c1-64)

for target in "$@"; do
  flavor=${target%%:*}
  version=${target#*:}
  case "$flavor" in
    vault) bin=vault user=vault dir=/vault ;;
    openbao | bao) flavor=openbao bin=bao user=openbao dir=/openbao ;;
    *) fail "unknown flavor in $target (vault:<version> or openbao:<version>)" ;;
  esac
  binary=$cache/$bin/$version/$bin
  [ -x "$binary" ] || fail "$binary not found: provision $flavor $version first"
  t0=$(date +%s)
  # The binary's hash, remembered per (size, mtime) so a cached run reads no 300 MB binary.
  stamp=$(stat -c '%s %Y' "$binary")
  memo=$cache/kit/sha256/$bin-$version
  bin_sha=""
  if [ -f "$memo" ] && [ "$(sed -n 1p "$memo")" = "$stamp" ]; then bin_sha=$(sed -n 2p "$memo"); fi
  if [ -z "$bin_sha" ]; then
    bin_sha=$(nice -n 19 sha256sum "$binary" | cut -c1-64)
    mkdir -p "$(dirname "$memo")" && printf '%s\n%s\n' "$stamp" "$bin_sha" >"$memo"
  fi
  key=$(printf '%s %s %s %s v1' "$bin_sha" "$ctx_hash" "$base_id" "$flavor" | sha256sum | cut -c1-16)
  image=vkc/$flavor:$version

  if docker image inspect "$image-$key" >/dev/null 2>&1; then
    docker tag "$image-$key" "$image"
    vkc_keep_newest_build "vkc/$flavor" "$version-" "$image-$key"
    echo "$image: cached ($image-$key, binary sha256 ${bin_sha%"${bin_sha#????????????}"}...)"
    continue
  fi

  ctx=$(mktemp -d /tmp/vkc-img-XXXXXX)
  trap 'rm -rf "$ctx"' EXIT INT TERM
  ln "$binary" "$ctx/bin" 2>/dev/null || cp "$binary" "$ctx/bin"
  chmod 0755 "$ctx/bin"
  cp "$ctx_src/Dockerfile" "$ctx_src/docker-entrypoint.sh" "$ctx/"
  chmod 0755 "$ctx/docker-entrypoint.sh"
  if ! nice -n 19 docker build -q --force-rm \
    --build-arg "BASE=$base" --build-arg "BIN=$bin" --build-arg "USER_NAME=$user" --build-arg "DATA_DIR=$dir" \
    --build-arg "VERSION=$version" --build-arg "BINARY_SHA256=$bin_sha" --build-arg "BUILD_KEY=$key" \
    -t "$image" -t "$image-$key" "$ctx" >"$ctx/build.log" 2>&1; then
    mkdir -p "$cache/kit/logs" && cp "$ctx/build.log" "$cache/kit/logs/build-$flavor-$version.log"
    fail "docker build of $image failed: $(grep -v '^$' "$ctx/build.log" | tail -n 1) (log: $cache/kit/logs/build-$flavor-$version.log)"
  fi
  rm -rf "$ctx"
  trap - EXIT INT TERM
  vkc_keep_newest_build "vkc/$flavor" "$version-" "$image-$key"
  echo "$image: built in $(( $(date +%s) - t0 ))s ($image-$key)"
done
