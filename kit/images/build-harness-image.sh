#!/bin/sh
# build-harness-image.sh: the harness's own image (the repository's Dockerfile) on a machine
# without an image registry. Two images, each content addressed and built only when its key has
# no image yet:
#   1. vkc/node:<node version>: the kit's Debian base (build-base-image.sh) plus this machine's Node
#      runtime (kit/images/node/Dockerfile): the node binary, npm, and the shared libraries node
#      links against that the base lacks. Key: sha256 of (node binary, npm version, those
#      libraries, the Dockerfile, the base image id).
#   2. vkc/vault-k8s-conformance:<package version>: `docker build --build-arg BASE=vkc/node:...`
#      of the repository's Dockerfile, on a context holding exactly what .dockerignore lets in.
#      Key: sha256 of every file of that context and the Node base image id.
# Both are tagged <version>-<key> too and labelled vkc.build.key. npm inside the build reaches the
# npm registry through the host's network (`--network host`), as `npm ci` on this machine does.
#
#   kit/images/build-harness-image.sh        -> prints the image reference, e.g. vkc/vault-k8s-conformance:0.1.0
#
# Environment: VKC_NODE_BIN (node on PATH), VKC_BASE_IMAGE (built if absent),
#              VKC_HARNESS_IMAGE (vkc/vault-k8s-conformance), VKC_CACHE_DIR (~/.cache/vault-k8s-conformance).
# Progress goes to stderr; stdout is the image reference only.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
cache=$VKC_CACHE_DIR
repo=${VKC_HARNESS_IMAGE:-vkc/vault-k8s-conformance}
export DOCKER_BUILDKIT=0 # Docker 20.10's builder; BuildKit needs buildx, which this CLI may lack

fail() { echo "build-harness-image: $*" >&2; exit 1; }
say() { echo "build-harness-image: $*" >&2; }

docker info >/dev/null 2>&1 || fail "no docker engine (run kit/docker/install-engine.sh)"
base=${VKC_BASE_IMAGE:-$("$here/build-base-image.sh")}
base_id=$(docker image inspect --format '{{.Id}}' "$base" 2>/dev/null) || fail "base image $base not found"

work=$(mktemp -d /tmp/vkc-harness-img-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
t0=$(date +%s)

# --- 1. The Node base ----------------------------------------------------------------------------
node_bin=$(readlink -f "${VKC_NODE_BIN:-$(command -v node || true)}")
[ -x "$node_bin" ] || fail "no node on PATH (or VKC_NODE_BIN)"
node_version=$("$node_bin" --version | sed 's/^v//')
case "$node_version" in 20.*) ;; *) fail "node $node_version at $node_bin: the harness image is built on Node 20" ;; esac
npm_dir=$(cd "$(dirname "$node_bin")/../lib/node_modules/npm" 2>/dev/null && pwd) ||
  fail "no npm next to $node_bin (expected $(dirname "$node_bin")/../lib/node_modules/npm)"
npm_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$npm_dir/package.json" | head -n 1)
# node's shared libraries other than glibc's (those come with the base, and must, for the loader).
mkdir -p "$work/node/libs"
ldd "$node_bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*) ;;
    *) cp -L "$lib" "$work/node/libs/" ;;
  esac
done
if ldd "$node_bin" | grep -q 'not found'; then fail "node at $node_bin lacks libraries on this machine: $(ldd "$node_bin" | grep 'not found' | tr '\n' ' ')"; fi
# The binary's hash, remembered per (size, mtime) like build-vault-images.sh does.
stamp=$(stat -c '%s %Y' "$node_bin")
memo=$cache/kit/sha256/node-$node_version
node_sha=""
if [ -f "$memo" ] && [ "$(sed -n 1p "$memo")" = "$stamp" ]; then node_sha=$(sed -n 2p "$memo"); fi
if [ -z "$node_sha" ]; then
  node_sha=$(nice -n 19 sha256sum "$node_bin" | cut -c1-64)
  mkdir -p "$(dirname "$memo")" && printf '%s\n%s\n' "$stamp" "$node_sha" >"$memo"
fi
libs_sha=$(cd "$work/node/libs" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-64)
node_key=$(printf '%s %s %s %s %s v1' "$node_sha" "$npm_version" "$libs_sha" "$(sha256sum <"$here/node/Dockerfile")" "$base_id" |
  sha256sum | cut -c1-16)
node_image=vkc/node:$node_version
if docker image inspect "$node_image-$node_key" >/dev/null 2>&1; then
  docker tag "$node_image-$node_key" "$node_image"
  vkc_keep_newest_build vkc/node "$node_version-" "$node_image-$node_key"
  say "$node_image: cached ($node_image-$node_key)"
else
  ln "$node_bin" "$work/node/node" 2>/dev/null || cp "$node_bin" "$work/node/node"
  cp -a "$npm_dir" "$work/node/npm"
  cp "$here/node/Dockerfile" "$work/node/Dockerfile"
  if ! nice -n 19 docker build -q --force-rm --build-arg "BASE=$base" --build-arg "NODE_VERSION=$node_version" \
    --build-arg "BUILD_KEY=$node_key" -t "$node_image" -t "$node_image-$node_key" "$work/node" >"$work/node-build.log" 2>&1; then
    mkdir -p "$cache/kit/logs" && cp "$work/node-build.log" "$cache/kit/logs/build-node.log"
    fail "docker build of $node_image failed: $(grep -v '^$' "$work/node-build.log" | tail -n 1) (log: $cache/kit/logs/build-node.log)"
  fi
  vkc_keep_newest_build vkc/node "$node_version-" "$node_image-$node_key"
  say "$node_image: built in $(( $(date +%s) - t0 ))s ($node_image-$node_key; node $node_version, npm $npm_version)"
fi
node_id=$(docker image inspect --format '{{.Id}}' "$node_image")

# --- 2. The harness ------------------------------------------------------------------------------
# The context: what .dockerignore admits (the Dockerfile's allowlist), copied, so that the key
# covers exactly what the build sees. A tar pipe keeps modes; tests, logs, dist and node_modules stay out.
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -n 1)
ctx=$work/harness
mkdir -p "$ctx"
(cd "$root" && tar -cf - --exclude='__tests__' --exclude='*.log' \
  Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json vitest.config.ts \
  README.md LICENSE BENCHMARKS.md lib scripts suites fixtures schemas) | tar -C "$ctx" -xf - ||
  fail "cannot copy the build context from $root"
# npm in the build trusts what npm here trusts: the host's extra CA certificates (a proxy that
# intercepts TLS), public certificates only, in the package stage only.
extra_ca=${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}
case "$extra_ca" in "" | null | undefined) ;; *) [ -r "$extra_ca" ] && cp "$extra_ca" "$ctx/vkc-build-ca.pem" ;; esac
ctx_sha=$(cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
key=$(printf '%s %s v1' "$ctx_sha" "$node_id" | sha256sum | cut -c1-16)
image=$repo:$version
if docker image inspect "$image-$key" >/dev/null 2>&1; then
  docker tag "$image-$key" "$image"
  vkc_keep_newest_build "$repo" "$version-" "$image-$key"
  say "$image: cached ($image-$key)"
  echo "$image"
  exit 0
fi
s=$(date +%s)
if ! nice -n 19 docker build --force-rm --network host --build-arg "BASE=$node_image" --build-arg "BUILD_KEY=$key" \
  -t "$image" -t "$image-$key" "$ctx" >"$work/harness-build.log" 2>&1; then
  mkdir -p "$cache/kit/logs" && cp "$work/harness-build.log" "$cache/kit/logs/build-harness.log"
  fail "docker build of $image failed: $(grep -v '^$' "$work/harness-build.log" | tail -n 1) (log: $cache/kit/logs/build-harness.log)"
fi
# The intermediate stage's image (sources, dev dependencies) is not kept; the final image is.
docker image prune -f --filter "label=vkc.build.stage=package" >/dev/null 2>&1 || true
# Every change of the code is a new key: only the newest build is kept.
vkc_keep_newest_build "$repo" "$version-" "$image-$key"
say "$image: built in $(( $(date +%s) - s ))s ($image-$key, FROM $node_image)"
echo "$image"
