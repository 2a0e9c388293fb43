#!/bin/sh
# build-ryuk-image.sh: testcontainers' reaper (Ryuk) image, built here from source, for machines
# without Docker Hub. The alternative is TESTCONTAINERS_RYUK_DISABLED=true (the harness then
# removes its containers itself; a SIGKILLed run can leave one behind, which Ryuk would reap).
#
#   VKC_RYUK_SRC=<git dir or checkout of github.com/testcontainers/moby-ryuk> kit/images/build-ryuk-image.sh
#   export RYUK_CONTAINER_IMAGE=vkc/ryuk:0.14.0      # what testcontainers then starts
#
# The source: the Go module proxy refuses github.com/testcontainers/moby-ryuk (403; its tags have
# no "v", so they are not module versions anyway), so it comes from a git clone (VKC_RYUK_SRC, a
# .git dir or a bare repo; tag VKC_RYUK_REF, default the version testcontainers 11.13 pins,
# 0.14.0). Its dependencies come from the Go module proxy. CGO off, static; the image is that one
# file, imported (no base image). Skips everything when vkc/ryuk:<ref>-<commit12> exists.
# Prints the image reference.
set -eu

src=${VKC_RYUK_SRC:-}
ref=${VKC_RYUK_REF:-0.14.0}
fail() { echo "build-ryuk-image: $*" >&2; exit 1; }

[ -n "$src" ] || fail "set VKC_RYUK_SRC to a git clone of https://github.com/testcontainers/moby-ryuk (the Go proxy refuses this module)"
commit=$(git --git-dir="$src" rev-parse "$ref^{commit}" 2>/dev/null || git -C "$src" rev-parse "$ref^{commit}" 2>/dev/null) ||
  fail "no $ref in $src"
image=vkc/ryuk:$ref
keyed=$image-$(printf %s "$commit" | cut -c1-12)
if docker image inspect "$keyed" >/dev/null 2>&1; then
  docker tag "$keyed" "$image"
  echo "$image"
  exit 0
fi

work=$(mktemp -d /tmp/vkc-ryuk-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/src" "$work/img/bin"
{ git --git-dir="$src" archive "$commit" 2>/dev/null || git -C "$src" archive "$commit"; } | tar -C "$work/src" -x
(cd "$work/src" && nice -n 19 env CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -p=1 -mod=mod" \
  GOSUMDB="${GOSUMDB:-off}" go build -trimpath -ldflags="-w -s" -o "$work/img/bin/ryuk" .) \
  >"$work/build.log" 2>&1 || { cp "$work/build.log" /tmp/vkc-ryuk-build.log; fail "go build failed: $(tail -n 1 "$work/build.log") (log: /tmp/vkc-ryuk-build.log)"; }
tar -C "$work/img" -c . | docker import -c 'ENTRYPOINT ["/bin/ryuk"]' \
  -c "LABEL vkc.ryuk.ref=$ref vkc.ryuk.commit=$commit" - "$keyed" >/dev/null || fail "docker import failed"
docker tag "$keyed" "$image"
echo "$image"
