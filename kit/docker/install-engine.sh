#!/bin/sh
# install-engine.sh: a Docker engine that can run kind's privileged node containers, on a
# Debian/Ubuntu machine without an image registry. Idempotent: run it as often as you like.
#
#   1. installs docker.io, jq and tini (Debian packages) if dockerd or jq is missing;
#   2. starts dockerd in the background if `docker info` fails (log: $VKC_DOCKERD_LOG);
#   3. probes `docker run --privileged` with a one-file image made here (no registry needed);
#      if runc refuses ("unable to apply caps"), installs kit/docker/runc-wrapper as
#      $VKC_WRAPPER_DEST, registers it in /etc/docker/daemon.json as the default runtime,
#      restarts dockerd and probes again;
#   4. prints one line on success; on failure one line on stderr and a non-zero exit.
#
# Environment: VKC_DOCKERD_LOG (default <cache>/kit/logs/dockerd.log; its apt and probe logs go
#              beside it, never to /tmp),
#              VKC_WRAPPER_DEST (default /usr/local/lib/vkc/runc-wrapper).
# Needs root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$(cd "$(dirname "$0")/.." && pwd)/cache.sh"
logs=$VKC_CACHE_DIR/kit/logs
mkdir -p "$logs"
log=${VKC_DOCKERD_LOG:-$logs/dockerd.log}
wrapper_dest=${VKC_WRAPPER_DEST:-/usr/local/lib/vkc/runc-wrapper}
daemon_json=/etc/docker/daemon.json
probe_image=vkc/probe:tini
runtime_name=vkc-runc

fail() { echo "install-engine: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (dockerd, apt-get and /etc/docker)"

# 1. Packages.
need=""
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
command -v jq >/dev/null 2>&1 || need="$need jq"
[ -x /usr/bin/tini-static ] || [ -x /usr/bin/docker-init ] || need="$need tini"
# The node image's runc is built here with cgo and seccomp (kit/node-image/build-binaries.sh).
[ -f /usr/include/seccomp.h ] || need="$need libseccomp-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
if [ -n "$need" ]; then
  command -v apt-get >/dev/null 2>&1 || fail "missing$need and no apt-get: install them by hand"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need; } >"$logs/apt.log" 2>&1 ||
    fail "apt-get install$need failed (see $logs/apt.log)"
fi
command -v docker >/dev/null 2>&1 || fail "no docker CLI on PATH after installing docker.io"

engine_up() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

wait_engine() { # seconds
  i=0
  while [ "$i" -lt "$1" ]; do engine_up && return 0; sleep 1; i=$((i + 1)); done
  return 1
}

start_dockerd() {
  # setsid: dockerd outlives this script and its terminal.
  # Without our open descriptors (a lock a caller holds around this script must not live on in dockerd).
  setsid dockerd >>"$log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  wait_engine 60 || fail "dockerd did not answer within 60s (log: $log: $(tail -n 1 "$log" 2>/dev/null))"
}

stop_dockerd() {
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [ -n "$pid" ] || pid=$(pgrep -x dockerd | head -n 1 || true)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i + 1)); done
  kill -0 "$pid" 2>/dev/null && fail "dockerd (pid $pid) did not stop within 30s"
  return 0
}

# 2. Engine.
if ! engine_up; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    wait_engine 30 || fail "dockerd is running but docker info fails: $(docker info 2>&1 | tail -n 1)"
  else
    start_dockerd
  fi
fi

# 3. Privileged containers. The probe image is one static file (tini), imported, not pulled.
ensure_probe() {
  docker image inspect "$probe_image" >/dev/null 2>&1 && return 0
  tini=/usr/bin/tini-static
  [ -x "$tini" ] || tini=$(readlink -f /usr/bin/docker-init)
  d=$(mktemp -d /tmp/vkc-probe-XXXXXX)
  cp "$tini" "$d/tini"
  tar -C "$d" -c . | docker import -c 'ENTRYPOINT ["/tini"]' - "$probe_image" >/dev/null ||
    { rm -rf "$d"; fail "docker import of the probe image failed"; }
  rm -rf "$d"
}

probe_privileged() { # prints the error's last line on failure
  docker run --rm --privileged --network none "$probe_image" --version >/dev/null 2>"$logs/probe.err"
}

ensure_probe
if ! probe_privileged; then
  grep -q "unable to apply caps" "$logs/probe.err" ||
    fail "docker run --privileged failed: $(grep -v '^$' "$logs/probe.err" | head -n 1)"
  missing=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
  # Install the wrapper where dockerd finds it, independent of this checkout.
  mkdir -p "$(dirname "$wrapper_dest")"
  cp "$here/runc-wrapper" "$wrapper_dest.new" && chmod 0755 "$wrapper_dest.new" && mv -f "$wrapper_dest.new" "$wrapper_dest"
  mkdir -p /etc/docker
  [ -s "$daemon_json" ] || echo '{}' >"$daemon_json"
  jq --arg n "$runtime_name" --arg p "$wrapper_dest" \
    '.runtimes[$n] = {path: $p} | ."default-runtime" = $n' "$daemon_json" >"$daemon_json.new" ||
    fail "cannot update $daemon_json (not JSON?)"
  if cmp -s "$daemon_json" "$daemon_json.new"; then
    rm -f "$daemon_json.new"
  else
    mv -f "$daemon_json.new" "$daemon_json"
  fi
  stop_dockerd
  start_dockerd
  probe_privileged ||
    fail "privileged containers still fail with the runc wrapper (CapBnd $missing): $(grep -v '^$' "$logs/probe.err" | head -n 1)"
  how="privileged via $runtime_name (drops capabilities missing from CapBnd $missing)"
else
  how="privileged containers run (default runtime $(docker info --format '{{.DefaultRuntime}}'))"
fi

echo "docker engine ready: server $(docker info --format '{{.ServerVersion}}'), $(docker info --format '{{.Driver}}/cgroup v{{.CgroupVersion}}'), $how, dockerd pid $(cat /var/run/docker.pid 2>/dev/null || pgrep -x dockerd | head -n 1)"
