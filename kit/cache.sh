# kit/cache.sh: sourced by the kit's scripts. Where the cache lives, by the harness's own rule
# (lib/config.ts): VKC_CACHE_DIR, else $XDG_CACHE_HOME/vault-k8s-conformance when XDG_CACHE_HOME is
# absolute, else ~/.cache/vault-k8s-conformance. The kit's part is VKC_KIT_CACHE (default <cache>/kit).
case "${XDG_CACHE_HOME:-}" in
  /*) vkc_cache_default=$XDG_CACHE_HOME/vault-k8s-conformance ;;
  *) vkc_cache_default=$HOME/.cache/vault-k8s-conformance ;;
esac
VKC_CACHE_DIR=${VKC_CACHE_DIR:-$vkc_cache_default}
VKC_KIT_CACHE=${VKC_KIT_CACHE:-$VKC_CACHE_DIR/kit}
