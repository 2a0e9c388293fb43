# kit/cache.sh: sourced by the kit's scripts. Where the cache lives, by the harness's own rule
# (lib/config.ts): VKC_CACHE_DIR, else $XDG_CACHE_HOME/vault-k8s-conformance when XDG_CACHE_HOME is
# absolute, else ~/.cache/vault-k8s-conformance. The kit's part is VKC_KIT_CACHE (default <cache>/kit).
case "${XDG_CACHE_HOME:-}" in
  /*) vkc_cache_default=$XDG_CACHE_HOME/vault-k8s-conformance ;;
  *) vkc_cache_default=$HOME/.cache/vault-k8s-conformance ;;
esac
VKC_CACHE_DIR=${VKC_CACHE_DIR:-$vkc_cache_default}
VKC_KIT_CACHE=${VKC_KIT_CACHE:-$VKC_CACHE_DIR/kit}

# Keeps one build per image: removes the tags <repo>:<prefix><16 hex digits> other than <keep>
# (builds from other inputs, e.g. before the sources or a binary changed), so repeated builds do
# not pile up images in the engine. An image another tag still names is only untagged.
vkc_keep_newest_build() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$1" | grep -x "$1:$2[0-9a-f]\{16\}" | grep -vx "$3" |
    xargs -r docker rmi >/dev/null 2>&1 || true
}
