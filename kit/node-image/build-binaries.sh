#!/bin/sh
# build-binaries.sh: every binary the kit's kind node image needs, from Go modules (the Go module
# proxy is reachable here; no GitHub, no registry), plus pause from the C source inside the
# k8s.io/kubernetes module. One Go build at a time, niced, -p=1 by default.
#
#   kit/node-image/build-binaries.sh [component...]     default: all, in this order:
#     kubernetes  kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler
#                 kube-proxy (k8s.io/kubernetes $KUBE_VERSION, staging modules at v0.<minor>.<patch>)
#     containerd  containerd ctr containerd-shim-runc-v2 (github.com/containerd/containerd/v2)
#     runc        runc (github.com/opencontainers/runc, cgo + libseccomp: needs gcc, libseccomp-dev)
#     cni         host-local loopback ptp portmap bridge (github.com/containernetworking/plugins)
#     crictl      crictl (sigs.k8s.io/cri-tools)
#     coredns     coredns (github.com/coredns/coredns)
#     etcd        etcd (go.etcd.io/etcd/server/v3; or the local target's cached binary)
#     pause       pause (gcc -static, build/pause/linux/pause.c of k8s.io/kubernetes)
#
# Output: $OUT/<component>-<version>/<binaries> plus .complete (content: the recipe). A component
# whose .complete matches its recipe is skipped: a second run builds nothing.
# Versions: the ones kind v0.33.0's base image uses (images/base/Dockerfile) and kubeadm 1.36's
# constants (etcd, CoreDNS, pause); override with the env variables below.
# Logs: $OUT/logs/<component>.log. Prints one line per component with its time.
set -eu

KUBE_VERSION=${KUBE_VERSION:-1.36.3}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.3.4}
RUNC_VERSION=${RUNC_VERSION:-v1.4.3}
CNI_VERSION=${CNI_VERSION:-v1.9.1}
CRICTL_VERSION=${CRICTL_VERSION:-v1.36.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.8}
PAUSE_VERSION=${PAUSE_VERSION:-3.10.2}
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
OUT=${VKC_KIT_BIN:-$VKC_KIT_CACHE/bin}

export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export GOFLAGS="${GOFLAGS:-} -mod=mod -p=${VKC_GO_PARALLEL:-1}"
# The checksum database is unreachable on these machines; the modules' own go.sum still pins.
export GOSUMDB=${GOSUMDB:-off}

fail() { echo "build-binaries: $*" >&2; exit 1; }
mkdir -p "$OUT/logs"

# done_or_build <dir> <recipe>: 0 if <dir>/.complete has this recipe.
is_done() { [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]; }

# gomod <module> <version>: prints the module's download dir (downloads it once).
gomod_dir() {
  go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# build_module <log> <outdir> <module> <version> <cgo 0|1> <tags> <ldflags> <replace-mode> <pkg>...
# A throwaway wrapper module requiring <module>@<version> (so its go.sum and version selection
# hold) and building the packages; replace-mode "kube-staging" turns k8s.io/kubernetes's
# ./staging replaces into the published staging modules, "copy" keeps non-local replaces.
build_module() {
  log=$1 outdir=$2 module=$3 version=$4 cgo=$5 tags=$6 ldflags=$7 mode=$8
  shift 8
  work=$(mktemp -d /tmp/vkc-gobuild-XXXXXX)
  dir=$(gomod_dir "$module" "$version")
  [ -n "$dir" ] || { rm -rf "$work"; echo "go mod download $module@$version failed" >>"$log"; return 1; }
  gover=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$dir/go.mod" | head -n 1)
  {
    echo "module vkc.local/build"
    echo
    echo "go ${gover:-1.24}"
    echo
    echo "require $module $version"
    case "$mode" in
      kube-staging)
        staging=v0.$(echo "$KUBE_VERSION" | cut -d. -f2).$(echo "$KUBE_VERSION" | cut -d. -f3)
        awk '/^replace \($/{r=1;next} r&&/^\)/{r=0} r&&/=> \.\/staging\//{print "replace " $1 " => " $1 " '"$staging"'"}' "$dir/go.mod"
        ;;
      copy)
        awk '/^replace \($/{r=1;next} r&&/^\)/{r=0;next} r{print "replace " $0} /^replace [^(]/{print}' "$dir/go.mod" |
          grep -v '=> *\.' || true
        ;;
    esac
  } >"$work/go.mod"
  cp "$dir/go.sum" "$work/go.sum" 2>/dev/null || true
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for p in "$@"; do echo "	_ \"$p\""; done
    echo ")"
  } >"$work/tools.go"
  (
    cd "$work"
    go get "$module@$version" >>"$log" 2>&1
    mkdir -p "$outdir"
    CGO_ENABLED=$cgo nice -n 19 go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$outdir/" "$@" >>"$log" 2>&1
  ) || { rm -rf "$work"; return 1; }
  rm -rf "$work"
}

component() { # name version recipe builder...
  # POSIX sh has no locals: c_* names are this function's alone.
  c_name=$1 c_version=$2 c_recipe=$3
  shift 3
  c_dir=$OUT/$c_name-$c_version
  if is_done "$c_dir" "$c_recipe"; then
    echo "$c_name $c_version: cached ($c_dir)"
    return 0
  fi
  c_log=$OUT/logs/$c_name.log
  : >"$c_log"
  c_t0=$(date +%s)
  rm -rf "$c_dir.part"
  mkdir -p "$c_dir.part"
  if ! "$@" "$c_dir.part" "$c_log"; then
    fail "$c_name $c_version failed after $(( $(date +%s) - c_t0 ))s: $(grep -v '^$' "$c_log" | tail -n 1) (log: $c_log)"
  fi
  printf '%s' "$c_recipe" >"$c_dir.part/.complete"
  rm -rf "$c_dir"
  mv "$c_dir.part" "$c_dir"
  echo "$c_name $c_version: built in $(( $(date +%s) - c_t0 ))s ($(ls "$c_dir" | tr '\n' ' '))"
}

b_kubernetes() {
  major=$(echo "$KUBE_VERSION" | cut -d. -f1) minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  build_module "$2" "$1" k8s.io/kubernetes "v$KUBE_VERSION" 0 "" "$ld" kube-staging \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
}

b_containerd() {
  m=github.com/containerd/containerd/v2
  ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=github.com/containerd/containerd/v2 -X $m/version.Revision=vkc-kit"
  build_module "$2" "$1" "$m" "$CONTAINERD_VERSION" 0 "no_aufs no_zfs no_btrfs no_devmapper" "$ld" copy \
    "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2"
}

b_runc() {
  # runc needs cgo (nsenter) and libseccomp; linked statically so the node image needs no libseccomp.
  build_module "$2" "$1" github.com/opencontainers/runc "$RUNC_VERSION" 1 "seccomp urfave_cli_no_docs" \
    "-s -w -X main.version=${RUNC_VERSION#v} -X main.gitCommit=vkc-kit -extldflags -static" copy \
    github.com/opencontainers/runc
}

b_cni() {
  m=github.com/containernetworking/plugins
  build_module "$2" "$1" "$m" "$CNI_VERSION" 0 "" "-s -w -X $m/pkg/utils/buildversion.BuildVersion=$CNI_VERSION" copy \
    "$m/plugins/ipam/host-local" "$m/plugins/main/loopback" "$m/plugins/main/ptp" "$m/plugins/meta/portmap" \
    "$m/plugins/main/bridge"
}

b_crictl() {
  build_module "$2" "$1" sigs.k8s.io/cri-tools "$CRICTL_VERSION" 0 "" \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" copy sigs.k8s.io/cri-tools/cmd/crictl
}

b_coredns() {
  build_module "$2" "$1" github.com/coredns/coredns "$COREDNS_VERSION" 0 "" "-s -w" copy github.com/coredns/coredns
}

b_etcd() {
  cached=$VKC_CACHE_DIR/etcd/$ETCD_VERSION/etcd
  if [ -x "$cached" ]; then
    cp "$cached" "$1/etcd" && echo "copied the local target's $cached" >>"$2"
    return
  fi
  build_module "$2" "$1" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" 0 "" "-s -w" copy go.etcd.io/etcd/server/v3
  for n in server v3; do [ ! -x "$1/$n" ] || mv "$1/$n" "$1/etcd"; done
}

b_pause() {
  dir=$(gomod_dir k8s.io/kubernetes "v$KUBE_VERSION")
  [ -f "$dir/build/pause/linux/pause.c" ] || { echo "no build/pause/linux/pause.c in k8s.io/kubernetes" >>"$2"; return 1; }
  nice -n 19 gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-vkc" -o "$1/pause" "$dir/build/pause/linux/pause.c" >>"$2" 2>&1 &&
    strip "$1/pause"
}

all="kubernetes containerd runc cni crictl coredns etcd pause"
[ $# -gt 0 ] || set -- $all
for c in "$@"; do
  case "$c" in
    kubernetes) component kubernetes "$KUBE_VERSION" "k8s.io/kubernetes@v$KUBE_VERSION cgo0 v1" b_kubernetes ;;
    containerd) component containerd "$CONTAINERD_VERSION" "containerd@$CONTAINERD_VERSION cgo0 v1" b_containerd ;;
    runc) component runc "$RUNC_VERSION" "runc@$RUNC_VERSION seccomp static v1" b_runc ;;
    cni) component cni "$CNI_VERSION" "plugins@$CNI_VERSION hl,lo,ptp,portmap,bridge v1" b_cni ;;
    crictl) component crictl "$CRICTL_VERSION" "cri-tools@$CRICTL_VERSION v1" b_crictl ;;
    coredns) component coredns "$COREDNS_VERSION" "coredns@$COREDNS_VERSION v1" b_coredns ;;
    etcd) component etcd "$ETCD_VERSION" "etcd@$ETCD_VERSION v1" b_etcd ;;
    pause) component pause "$PAUSE_VERSION" "pause.c@k8s-v$KUBE_VERSION static v1" b_pause ;;
    *) fail "unknown component $c (one of: $all)" ;;
  esac
done
