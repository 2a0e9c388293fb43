# The harness as an image, to run as a Job in the cluster under test (deploy/job/, README "Run as a
# Job in the cluster"): Node 20 plus the package as npm installs it from its `npm pack` tarball
# (compiled JavaScript, production dependencies only). Entrypoint: the vault-k8s-conformance
# command; runs as uid/gid 10001, never root.
#
#   docker build -t vault-k8s-conformance:0.1.0 .                 # from a clone; needs the npm registry
#   docker build --build-arg BASE=my-registry/node:20-bookworm-slim ...
#
# BASE is any image with Node >= 20.19 and npm on PATH (Debian-like: groupadd/useradd). Without an
# image registry, kit/images/build-harness-image.sh makes one from the kit's Debian base and this
# machine's Node, then builds this file with --build-arg BASE=... . Written for the legacy builder
# as well as BuildKit (DOCKER_BUILDKIT=0: no heredocs, no COPY --chmod, no RUN --mount). What goes
# into the build context: .dockerignore (an allowlist).
ARG BASE=node:20-bookworm-slim

# 1. The package as npm publishes it: npm ci (dev dependencies: TypeScript), npm pack (its prepack
#    compiles to dist/), then the tarball installed with production dependencies only.
FROM ${BASE} AS package
# Marks this stage's image, which the legacy builder keeps untagged, for `docker image prune --filter`.
LABEL vkc.build.stage=package
WORKDIR /src
# Install scripts stay off, as package.json's allowScripts says (esbuild, ssh2, cpu-features and
# protobufjs have pure-JavaScript fallbacks).
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# vkc-build-ca.pem, when the context has it: extra CA certificates for npm behind a proxy that
# intercepts TLS (the build script puts the host's NODE_EXTRA_CA_CERTS there). This stage only.
COPY package.json package-lock.json vkc-build-ca.pe[m] ./
RUN if [ -s vkc-build-ca.pem ]; then export NODE_EXTRA_CA_CERTS=$PWD/vkc-build-ca.pem; fi \
 && npm ci --ignore-scripts
COPY . .
RUN if [ -s vkc-build-ca.pem ]; then export NODE_EXTRA_CA_CERTS=$PWD/vkc-build-ca.pem; fi \
 && mkdir -p /tmp/pack && npm pack --pack-destination /tmp/pack \
 && npm install --global --prefix /opt/vkc --omit=dev --ignore-scripts --prefer-offline /tmp/pack/vault-k8s-conformance-*.tgz \
 && test -x /opt/vkc/lib/node_modules/vault-k8s-conformance/dist/lib/main.js

# 2. The runtime: the base plus the installed package; nothing of the build (sources, dev
#    dependencies, npm's cache) comes along.
FROM ${BASE}
ARG BUILD_KEY=unknown
RUN groupadd --system --gid 10001 vkc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/vkc --create-home --shell /usr/sbin/nologin vkc
COPY --from=package /opt/vkc/lib/node_modules/vault-k8s-conformance /usr/local/lib/node_modules/vault-k8s-conformance
RUN ln -s ../lib/node_modules/vault-k8s-conformance/dist/lib/main.js /usr/local/bin/vault-k8s-conformance \
 && vault-k8s-conformance --version
# Reports go to ./reports of the working directory unless --reports says otherwise; the Job
# mounts a volume on /reports. HOME holds nothing the harness needs (no kubeconfig: in a pod the
# existing target uses the pod's ServiceAccount).
ENV NODE_ENV=production HOME=/home/vkc
WORKDIR /home/vkc
USER 10001:10001
LABEL org.opencontainers.image.title="vault-k8s-conformance" \
      org.opencontainers.image.description="End-to-end conformance harness for Vault's and OpenBao's Kubernetes auth method" \
      org.opencontainers.image.licenses="Apache-2.0" \
      vkc.build.key="${BUILD_KEY}"
ENTRYPOINT ["/usr/local/bin/vault-k8s-conformance"]
CMD ["--help"]
