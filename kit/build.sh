#!/bin/sh
# kit/build.sh: everything the kind target needs on a machine without an image registry, in
# order, each step cached (a second run takes seconds and builds nothing):
#   1. docker/install-engine.sh        Docker engine (+ runc wrapper where privileged is refused)
#   2. images/build-base-image.sh      vkc/debian:bookworm (debootstrap + docker import)
#   3. images/build-vault-images.sh    vkc/vault:<v>, vkc/openbao:<v> from the provisioned binaries
#   4. images/build-ryuk-image.sh      vkc/ryuk:0.14.0, only when VKC_RYUK_SRC names a moby-ryuk clone
#   5. node-image/build-node-image.sh  vkc/kind-node:v<KUBE_VERSION>
# Then, e.g.:
#   RYUK_CONTAINER_IMAGE=vkc/ryuk:0.14.0 (or TESTCONTAINERS_RYUK_DISABLED=true) \
#   npm run conformance -- --target kind --node-image vkc/kind-node:v1.36.3 --vault-image vkc/vault:1.21.1
# Prints one line per step with its time; stops at the first failure with its one-line reason.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
t() { s=$(date +%s); "$@"; echo "kit: $(basename "$1") done in $(( $(date +%s) - s ))s" >&2; }

t "$here/docker/install-engine.sh"
t "$here/images/build-base-image.sh" >/dev/null
t "$here/images/build-vault-images.sh"
if [ -n "${VKC_RYUK_SRC:-}" ]; then t "$here/images/build-ryuk-image.sh"; fi
t "$here/node-image/build-node-image.sh"
