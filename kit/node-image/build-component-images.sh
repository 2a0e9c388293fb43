#!/bin/sh
# build-component-images.sh: the container images kubeadm runs (control plane, kube-proxy, etcd,
# CoreDNS, pause) from the binaries kit/node-image/build-binaries.sh made, tagged with the exact
# names `kubeadm config images list` asks for (registry.k8s.io/...), saved into one archive that
# kit/node-image/build-node-image.sh loads into the node's containerd.
#
#   kit/node-image/build-component-images.sh      -> prints the archive path
#
# Cached: $VKC_KIT_CACHE/node/images-<key>.tar, key = hash of the binaries' recipes, the
# Dockerfiles and the bases' ids. Images are also left in the local engine, tagged as above.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
KUBE_VERSION=${KUBE_VERSION:-1.36.3}
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
kit=$VKC_KIT_CACHE
bins=${VKC_KIT_BIN:-$kit/bin}
export DOCKER_BUILDKIT=0

fail() { echo "build-component-images: $*" >&2; exit 1; }

bindir() { # component -> its build dir (the newest recipe there is)
  d=$(ls -d "$bins/$1"-* 2>/dev/null | grep -v '\.part$' | sort -V | tail -n 1)
  [ -n "$d" ] && [ -f "$d/.complete" ] || fail "no $1 binaries in $bins (run kit/node-image/build-binaries.sh $1)"
  echo "$d"
}
kube=$(bindir kubernetes)
[ "$(basename "$kube")" = "kubernetes-$KUBE_VERSION" ] || kube=$bins/kubernetes-$KUBE_VERSION
[ -f "$kube/.complete" ] || fail "no Kubernetes $KUBE_VERSION binaries (run kit/node-image/build-binaries.sh kubernetes)"
etcd=$(bindir etcd) coredns=$(bindir coredns) pause=$(bindir pause)

# The images kubeadm wants, from kubeadm itself.
list=$("$kube/kubeadm" config images list --kubernetes-version "v$KUBE_VERSION" 2>/dev/null) ||
  fail "kubeadm config images list failed"

# The static base: /tmp, passwd/group (root, nobody, nonroot 65532), the host's CA bundle.
static_key=$(printf 'static-base v1 %s' "$(sha256sum /etc/ssl/certs/ca-certificates.crt 2>/dev/null | cut -c1-16)" | sha256sum | cut -c1-16)
static=vkc/static-base:$static_key
if ! docker image inspect "$static" >/dev/null 2>&1; then
  d=$(mktemp -d /tmp/vkc-static-XXXXXX)
  mkdir -p "$d/tmp" "$d/etc/ssl/certs" "$d/var/run"
  chmod 1777 "$d/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
  printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$d/etc/ssl/certs/" 2>/dev/null || true
  tar --numeric-owner --owner=0 --group=0 -C "$d" -c . | docker import -c "LABEL vkc.static-base.key=$static_key" - "$static" >/dev/null ||
    { rm -rf "$d"; fail "docker import of the static base failed"; }
  rm -rf "$d"
fi
debian=${VKC_BASE_IMAGE:-$("$here/../images/build-base-image.sh")}

recipes=$(cat "$kube/.complete" "$etcd/.complete" "$coredns/.complete" "$pause/.complete")
files=$(cat "$here/images/Dockerfile.static" "$here/images/Dockerfile.entrypoint" "$here/images/Dockerfile.kube-proxy" "$here/images/iptables-wrapper" | sha256sum | cut -c1-16)
ids="$(docker image inspect -f '{{.Id}}' "$static") $(docker image inspect -f '{{.Id}}' "$debian")"
key=$(printf '%s\n%s\n%s\n%s\n%s v1' "$list" "$recipes" "$files" "$ids" "$KUBE_VERSION" | sha256sum | cut -c1-16)
archive=$kit/node/images-$key.tar
if [ -s "$archive" ]; then echo "$archive"; exit 0; fi

build() { # ref dockerfile base bin-path bin-name
  ctx=$(mktemp -d /tmp/vkc-comp-XXXXXX)
  ln "$4" "$ctx/bin" 2>/dev/null || cp "$4" "$ctx/bin"
  sed "s|@BIN@|$5|g" "$here/images/$2" >"$ctx/Dockerfile"
  cp "$here/images/iptables-wrapper" "$ctx/"
  if ! nice -n 19 docker build -q --force-rm --build-arg "BASE=$3" --build-arg "BIN=$5" --build-arg "KEY=$key" \
    -t "$1" "$ctx" >"$ctx/log" 2>&1; then
    cp "$ctx/log" "/tmp/vkc-comp-$5.log"
    rm -rf "$ctx"
    fail "docker build of $1 failed: $(grep -v '^$' "/tmp/vkc-comp-$5.log" | tail -n 1) (log: /tmp/vkc-comp-$5.log)"
  fi
  rm -rf "$ctx"
}

refs=""
for ref in $list; do
  name=${ref%:*}
  name=${name##*/}
  case "$name" in
    kube-apiserver | kube-controller-manager | kube-scheduler) build "$ref" Dockerfile.static "$static" "$kube/$name" "$name" ;;
    kube-proxy) build "$ref" Dockerfile.kube-proxy "$debian" "$kube/kube-proxy" kube-proxy ;;
    etcd) build "$ref" Dockerfile.static "$static" "$etcd/etcd" etcd ;;
    coredns) build "$ref" Dockerfile.entrypoint "$static" "$coredns/coredns" coredns ;;
    pause) build "$ref" Dockerfile.entrypoint "$static" "$pause/pause" pause ;;
    *) fail "kubeadm wants $ref, which the kit does not build" ;;
  esac
  refs="$refs $ref"
done

mkdir -p "$kit/node"
docker save -o "$archive.part" $refs || fail "docker save failed"
mv -f "$archive.part" "$archive"
# Only the newest archive is kept: older keys are never asked for again.
for old in "$kit"/node/images-*.tar; do [ "$old" = "$archive" ] || rm -f "$old"; done
echo "$archive"
