#!/bin/sh
# docker-entrypoint.sh for kit-built Vault and OpenBao images: the parts of the official images'
# entrypoint that the Helm charts and `docker run` rely on.
#   - `docker run IMG -dev`, `docker run IMG server -dev`: the binary is prepended;
#   - `docker run IMG vault server ...` / `bao server ...`: run as given;
#   - <PREFIX>_LOCAL_CONFIG (VAULT_ or BAO_): written to <dir>/config/local.json, and a server
#     without -dev/-config reads <dir>/config;
#   - started as root: drops to the image's user (uid 100, gid 1000) with setpriv, as the official
#     images do with su-exec (SKIP_DROP_PRIVS=1 keeps root). Under the Helm charts' securityContext
#     it already runs as uid 100.
# Not carried over: <PREFIX>_REDIRECT_INTERFACE / _CLUSTER_INTERFACE (no `ip` here), setcap
# IPC_LOCK (set <PREFIX>_DISABLE_MLOCK=true instead; SKIP_SETCAP is accepted and ignored).
set -e

bin=${VKC_BIN:-vault}
user=${VKC_USER:-$bin}
dir=${VKC_DATA_DIR:-/$bin}
case "$bin" in
  bao) prefix=BAO ;;
  *) prefix=VAULT ;;
esac

case "${1:-}" in
  -*) set -- "$bin" "$@" ;;
  "$bin" | /bin/"$bin" | "") ;;
  *)
    # A subcommand of the binary ("server", "status", ...), or some other program ("sh").
    if "$bin" -help 2>&1 | grep -Eq "^ +$1( |\$)"; then set -- "$bin" "$@"; fi
    ;;
esac
[ $# -gt 0 ] || set -- "$bin" server -dev -dev-listen-address=0.0.0.0:8200

case "$1" in "$bin" | /bin/"$bin")
  eval "local_config=\${${prefix}_LOCAL_CONFIG:-}"
  if [ -n "$local_config" ]; then
    printf '%s\n' "$local_config" >"$dir/config/local.json"
  fi
  if [ "${2:-}" = server ]; then
    has_config=no
    for a in "$@"; do case "$a" in -dev | -dev=* | -config | -config=* | --dev | --config | --config=*) has_config=yes ;; esac; done
    if [ "$has_config" = no ]; then
      shift 2
      set -- "$bin" server -config="$dir/config" "$@"
    fi
  fi
  if [ "$(id -u)" = 0 ] && [ -z "${SKIP_DROP_PRIVS:-}" ]; then
    [ -n "${SKIP_CHOWN:-}" ] || chown -R "$user:$user" "$dir/config" "$dir/logs" "$dir/file" 2>/dev/null || true
    export HOME="$dir"
    exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
  fi
  ;;
esac

exec "$@"
