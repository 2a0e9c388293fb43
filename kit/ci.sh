#!/usr/bin/env bash
# kit/ci.sh: the kind phase of CI (`npm run test:kind`). On a machine without an image registry:
#   1. kit/build.sh: Docker engine (runc wrapper where privileged containers are refused), Debian
#      base, Vault/OpenBao images from the provisioned binaries, the kind node image from source;
#   2. the kind CLI (npm run setup -- --target kind: KIND_BIN, the cache, PATH, or go install);
#   3. npm run conformance -- --target kind for each flavor x Vault mode (container, in-cluster),
#      each run creating and deleting its own cluster;
#   4. checks that nothing is left: no kind cluster, no container, no kind network, no volume;
#   5. the kind target's lifecycle tests (`npx vitest run --project kind`: --dry-run, Ctrl-C at each
#      phase, --keep, logs export on failure, bad engines), each checking that nothing is left.
# Prints one line per step with its time; exits non-zero at the first failure.
#
# Environment: VKC_KIND_RUNS (default "vault:container vault:in-cluster openbao:container
# openbao:in-cluster"), VKC_REPORTS_DIR (default ./reports; each run writes kind-<flavor>-<mode>/),
# VKC_STOP_ENGINE=1 stops the engine afterwards when this script started it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kube=${KUBE_VERSION:-1.36.3}
vault_version=${VKC_VAULT_VERSION:-1.21.1}
bao_version=${VKC_BAO_VERSION:-2.7.2}
runs=${VKC_KIND_RUNS:-vault:container vault:in-cluster openbao:container openbao:in-cluster}
reports=${VKC_REPORTS_DIR:-$root/reports}
node_image=vkc/kind-node:v$kube

t0=$(date +%s)
say() { echo "kind-ci: $* ($(( $(date +%s) - t0 ))s)" >&2; }

engine_was_up=0
docker info >/dev/null 2>&1 && engine_was_up=1
stop_engine() {
  if [ "${VKC_STOP_ENGINE:-0}" = 1 ] && [ "$engine_was_up" = 0 ]; then bash "$root/kit/docker/stop-engine.sh" || true; fi
}
trap stop_engine EXIT

# The images are built from the binaries the local target provisions (npm test did that already
# in CI; this makes the phase stand alone).
npm run -s setup -- --flavor all >/dev/null
say "local binaries provisioned"
sh "$root/kit/build.sh"
say "kit built"
kind_line=$(npm run -s setup -- --target kind --node-image "$node_image" | head -n 1)
kind_bin=$(echo "$kind_line" | sed -E 's/^kind [^ ]+ \([^)]*\) ([^,]+),.*/\1/')
[ -x "$kind_bin" ] || { echo "kind-ci: no kind CLI ($kind_line)" >&2; exit 1; }
export KIND_BIN=$kind_bin
say "kind CLI $kind_bin"

# testcontainers' reaper image cannot be built here (the Go proxy refuses its module): the
# harness removes its containers itself, which the leftover check below verifies.
if ! docker image inspect "${RYUK_CONTAINER_IMAGE:-testcontainers/ryuk:0.14.0}" >/dev/null 2>&1; then
  export TESTCONTAINERS_RYUK_DISABLED=true
fi

leftovers() {
  local out=""
  out+=$("$KIND_BIN" get clusters 2>/dev/null | grep -v '^No kind clusters' | sed 's/^/kind cluster /' || true)
  out+=$(docker ps -a --format 'container {{.Names}} ({{.Image}})' || true)
  out+=$(docker network ls --format '{{.Name}}' | grep -vxE 'bridge|host|none' | sed 's/^/network /' || true)
  out+=$(docker volume ls -q | sed 's/^/volume /' || true)
  printf '%s' "$out"
}
before=$(leftovers)
[ -z "$before" ] || { echo "kind-ci: the engine is not clean before the runs: $(echo "$before" | tr '\n' ';')" >&2; exit 1; }

status=0
# Fails the phase (status 1) when anything is left after the step named in $1.
check_left() {
  left=$(leftovers)
  if [ -n "$left" ]; then
    echo "kind-ci: left behind after $1: $(echo "$left" | tr '\n' ';')" >&2
    status=1
  fi
}
for run in $runs; do
  flavor=${run%%:*} mode=${run#*:}
  case "$flavor" in
    vault) image=vkc/vault:$vault_version ;;
    openbao) image=vkc/openbao:$bao_version ;;
    *) echo "kind-ci: unknown flavor in VKC_KIND_RUNS: $run" >&2; exit 2 ;;
  esac
  s=$(date +%s)
  if npm run -s conformance -- --target kind --flavor "$flavor" --node-image "$node_image" \
    --vault-image "$image" --vault "$mode" --reports "$reports/kind-$flavor-$mode"; then
    say "kind $flavor --vault $mode passed in $(( $(date +%s) - s ))s"
  else
    status=1
    say "kind $flavor --vault $mode FAILED after $(( $(date +%s) - s ))s"
  fi
  check_left "kind $flavor --vault $mode"
done
s=$(date +%s)
if npx vitest run --project kind; then
  say "kind lifecycle tests passed in $(( $(date +%s) - s ))s"
else
  status=1
  say "kind lifecycle tests FAILED after $(( $(date +%s) - s ))s"
fi
check_left "the kind lifecycle tests"
say "kind phase done (status $status)"
exit $status
