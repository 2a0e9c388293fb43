#!/bin/sh
# build-node-image.sh: a kind node image for Kubernetes $KUBE_VERSION built on this machine, with
# no registry: what `kind build node-image` makes, from pieces that Debian's mirror and the Go
# module proxy provide.
#
#   kit/node-image/build-node-image.sh       -> prints the image (vkc/kind-node:v<version>)
#   kind create cluster --image vkc/kind-node:v1.36.3
#
# Steps (each cached; a second run builds nothing):
#   1. build-rootfs.sh             Debian bookworm + the packages kind's base installs
#   2. build-binaries.sh           kubelet, kubeadm, kubectl, containerd, runc, CNI, crictl, ...
#   3. build-component-images.sh   registry.k8s.io/{kube-*,etcd,coredns,pause} images, one archive
#   4. here: kind's base layout (images/base/files of sigs.k8s.io/kind@$KIND_VERSION, from the Go
#      module cache) + binaries + the kit's files (files/) -> imported as vkc/kind-base:<key>;
#      then, as kind does, a build container imports the archive into containerd (k8s.io
#      namespace, pinned, not unpacked) and is committed as vkc/kind-node:v<version>-<key>.
# Needs root, docker, go, debootstrap, gcc + libseccomp-dev (runc).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
export KUBE_VERSION=${KUBE_VERSION:-1.36.3}
KIND_VERSION=${KIND_VERSION:-v0.33.0}
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
kit=$VKC_KIT_CACHE
bins=${VKC_KIT_BIN:-$kit/bin}
image=${VKC_NODE_IMAGE:-vkc/kind-node:v$KUBE_VERSION}

fail() { echo "build-node-image: $*" >&2; exit 1; }
step() { echo "build-node-image: $*" >&2; }

t0=$(date +%s)
rootfs=$("$here/build-rootfs.sh")
step "rootfs $rootfs ($(( $(date +%s) - t0 ))s)"
"$here/build-binaries.sh" >&2
step "binaries ($(( $(date +%s) - t0 ))s)"
archive=$("$here/build-component-images.sh")
step "component images $archive ($(( $(date +%s) - t0 ))s)"

kind_dir=$(GOFLAGS=-mod=mod GOSUMDB=${GOSUMDB:-off} go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$kind_dir/images/base/files" ] || fail "no images/base/files in sigs.k8s.io/kind@$KIND_VERSION"

comp() { d=$(ls -d "$bins/$1"-* 2>/dev/null | grep -v '\.part$' | sort -V | tail -n 1); [ -f "$d/.complete" ] || fail "no $1 in $bins"; echo "$d"; }
kube=$bins/kubernetes-$KUBE_VERSION
containerd=$(comp containerd) runc=$(comp runc) cni=$(comp cni) crictl=$(comp crictl)

key=$( {
  echo "$rootfs $archive $KIND_VERSION v1"
  cat "$kube/.complete" "$containerd/.complete" "$runc/.complete" "$cni/.complete" "$crictl/.complete"
  cat "$0"
  (cd "$here/files" && find . -type f | sort | xargs cat)
} | sha256sum | cut -c1-16)
keyed=$image-$key
if docker image inspect "$keyed" >/dev/null 2>&1; then
  docker tag "$keyed" "$image"
  vkc_keep_newest_build "${image%:*}" "${image##*:}-" "$keyed"
  vkc_keep_newest_build vkc/kind-base "" "vkc/kind-base:$key"
  step "cached ($keyed)"
  echo "$image"
  exit 0
fi

base=vkc/kind-base:$key
if ! docker image inspect "$base" >/dev/null 2>&1; then
  root=$(mktemp -d /tmp/vkc-node-XXXXXX)
  trap 'rm -rf "$root"' EXIT INT TERM
  tar -C "$root" -xf "$rootfs"
  f=$kind_dir/images/base/files
  # kind's Dockerfile: scripts and directories 0755, everything else 0644.
  install -d -m 0755 "$root/kind" "$root/kind/bin" "$root/LICENSES" "$root/etc/containerd" "$root/etc/default" \
    "$root/etc/sysctl.d" "$root/etc/systemd/system/kubelet.service.d" "$root/usr/local/bin" "$root/usr/local/sbin" \
    "$root/opt/cni/bin" "$root/etc/kubernetes/manifests" "$root/kind/manifests"
  install -m 0755 "$f"/usr/local/bin/* "$root/usr/local/bin/"
  install -m 0644 "$f"/kind/README.txt "$root/kind/"
  install -m 0755 "$f"/kind/bin/* "$root/kind/bin/"
  install -m 0644 "$f"/LICENSES/* "$root/LICENSES/"
  install -m 0644 "$f"/etc/crictl.yaml "$root/etc/"
  install -m 0644 "$f"/etc/containerd/* "$root/etc/containerd/"
  install -m 0644 "$f"/etc/default/* "$root/etc/default/"
  install -m 0644 "$f"/etc/sysctl.d/* "$root/etc/sysctl.d/"
  for u in "$f"/etc/systemd/system/*; do [ -f "$u" ] && install -m 0644 "$u" "$root/etc/systemd/system/"; done
  install -m 0644 "$f"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
  # kind's RUN: trim systemd for a container.
  find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$root/sbin/init"
  systemctl --root="$root" enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1 ||
    fail "systemctl --root enable failed"
  systemctl --root="$root" mask systemd-binfmt.service >/dev/null 2>&1 || true
  # Binaries, where kind puts them.
  for b in kubelet kubeadm kubectl; do install -m 0755 "$kube/$b" "$root/usr/bin/$b"; done
  for b in containerd ctr containerd-shim-runc-v2; do install -m 0755 "$containerd/$b" "$root/usr/local/bin/$b"; done
  install -m 0755 "$runc/runc" "$root/usr/local/sbin/runc"
  install -m 0755 "$crictl/crictl" "$root/usr/local/bin/crictl"
  for b in host-local loopback ptp portmap bridge; do install -m 0755 "$cni/$b" "$root/opt/cni/bin/$b"; done
  # The kit's files: static one-node CNI, manifests, kubelet drop-in for cgroup v1 hosts.
  (cd "$here/files" && find . -type f) | while read -r p; do install -D -m 0644 "$here/files/$p" "$root/$p"; done
  sed -i 's|^KUBELET_EXTRA_ARGS=\(.*\)|KUBELET_EXTRA_ARGS=\1 --config-dir=/etc/kubernetes/kubelet.conf.d|' "$root/etc/default/kubelet"
  # The sandbox image kubeadm's version wants (kind's base names an older pause).
  pause=$("$kube/kubeadm" config images list --kubernetes-version "v$KUBE_VERSION" 2>/dev/null | grep /pause:)
  sed -i "s|sandbox_image = .*|sandbox_image = \"$pause\"|" "$root/etc/containerd/config.toml"
  # Pods' oom_score_adj no lower than containerd's own: lowering it needs CAP_SYS_RESOURCE, which
  # hosts like this one withhold (runc init then fails "failed to update /proc/self/oom_score_adj:
  # Permission denied" for every sandbox). kind's entrypoint does the same for rootless nodes.
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$root/etc/containerd/config.toml"
  printf 'v%s' "$KUBE_VERSION" >"$root/kind/version"
  tar --numeric-owner -C "$root" -c . | nice -n 19 docker import \
    -c 'ENV container=docker' \
    -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
    -c "LABEL vkc.kind-base.key=$key" - "$base" >/dev/null || fail "docker import of $base failed"
  rm -rf "$root"
  trap - EXIT INT TERM
  step "base $base ($(( $(date +%s) - t0 ))s)"
fi

# As kind's build: a plain container (sleep), containerd in it, images imported, committed.
id=vkc-node-build-$key-$$
trap 'docker rm -f -v "$id" >/dev/null 2>&1 || true' EXIT INT TERM
docker run -d --name "$id" --entrypoint=sleep --security-opt seccomp=unconfined "$base" infinity >/dev/null ||
  fail "cannot start the build container from $base"
docker exec "$id" sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer|length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json' ||
  fail "writing /etc/containerd/cri-base.json failed"
docker exec "$id" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &
for i in $(seq 30); do [ -S /run/containerd/containerd.sock ] && ctr info >/dev/null 2>&1 && exit 0; sleep 1; done; tail -n 5 /tmp/containerd.log; exit 1' ||
  fail "containerd did not start in the build container"
docker exec -i "$id" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - <"$archive" >/dev/null ||
  fail "ctr images import failed"
docker exec "$id" sh -c 'ctr --namespace=k8s.io images list -q' >&2
# (containerd is a child of the container's init once the exec ends; a zombie does not count)
docker exec "$id" sh -c 'pkill -x containerd; for i in $(seq 20); do ps -C containerd -o stat= | grep -qv Z || exit 0; sleep 1; done; exit 1' ||
  fail "containerd did not stop"
docker exec "$id" rm -rf /tmp/containerd.log /run/containerd
docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
  --change "LABEL vkc.kind-node.key=$key vkc.kind-node.kubernetes=v$KUBE_VERSION vkc.kind-node.kind=$KIND_VERSION" \
  "$id" "$keyed.commit" >/dev/null || fail "docker commit failed"
docker rm -f -v "$id" >/dev/null 2>&1 || true
# systemd stops on SIGRTMIN+3, not SIGTERM; neither `docker import -c` nor `docker commit
# --change` takes STOPSIGNAL, so one metadata-only build step adds it.
ctx=$(mktemp -d /tmp/vkc-node-stop-XXXXXX)
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$keyed.commit" >"$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --force-rm -t "$keyed" "$ctx" >/dev/null || { rm -rf "$ctx"; fail "docker build (STOPSIGNAL) failed"; }
rm -rf "$ctx"
docker rmi "$keyed.commit" >/dev/null
docker tag "$keyed" "$image"
vkc_keep_newest_build "${image%:*}" "${image##*:}-" "$keyed"
vkc_keep_newest_build vkc/kind-base "" "$base"
step "node image $keyed in $(( $(date +%s) - t0 ))s"
echo "$image"
