#!/bin/sh
# stop-engine.sh: stops the dockerd that install-engine.sh started (pid from /var/run/docker.pid),
# waiting up to 30s. Containers, images and /etc/docker/daemon.json are left as they are; with
# --clean it first removes every container (running or not) and unused networks and volumes.
# Prints one line; exits non-zero with one line if dockerd will not stop.
set -eu

fail() { echo "stop-engine: $*" >&2; exit 1; }

if [ "${1:-}" = "--clean" ] && docker info >/dev/null 2>&1; then
  ids=$(docker ps -aq)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  docker network prune -f >/dev/null
  docker volume prune -f >/dev/null
fi

pid=$(cat /var/run/docker.pid 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  echo "docker engine not running"
  exit 0
fi
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 30 ]; do sleep 1; i=$((i + 1)); done
kill -0 "$pid" 2>/dev/null && fail "dockerd (pid $pid) did not stop within 30s"
# dockerd stops the containerd it started itself; nothing else to do.
echo "docker engine stopped (dockerd pid $pid)"
