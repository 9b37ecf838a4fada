# ncs2-labeller (the entry point) and ncs2-nfd-hook (on the PATH, for kubectl exec) in a
# virtual environment on Debian's own Python 3.11. Nothing else ships: no compiler, no
# pip, no caches, no tests.
#
#   docker build -t ncs2-feature-discovery .
#   buildah build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt \
#       -t ncs2-feature-discovery .
#
# The optional build secret "ca-bundle" is a CA bundle for pip, for networks that inspect
# TLS. A secret is mounted for one RUN step only and is never part of a layer.
# scripts/image-test builds this file and checks the result.

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

# python3-venv brings ensurepip, needed only here to install into the venv.
# DL3008: no version pins; the build follows Debian stable and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python3 -m venv /opt/ncs2

# .dockerignore lets through only what building the wheel needs.
COPY . /src

# pip takes the CA bundle from the build secret when one is given.
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/ncs2/bin/pip install --no-cache-dir /src

# Trim what a synchronous labeller never imports. The kubernetes client (37.x seen here)
# carries an asyncio twin of itself, kubernetes/aio (68 MB of its 126 MB), and pulls
# aiohttp and its helpers for it; the synchronous client imports none of them
# (scripts/image-test imports kubernetes.client inside the image to prove it). pip check
# would now report them missing: that is expected. Then pip and setuptools themselves go.
RUN /opt/ncs2/bin/pip uninstall -y \
        aiohttp aiohttp-retry aiohappyeyeballs aiosignal attrs frozenlist multidict \
        propcache yarl \
    && rm -rf /opt/ncs2/lib/python3*/site-packages/kubernetes/aio \
    && /opt/ncs2/bin/python -m pip uninstall -y pip setuptools \
    && rm -rf /opt/ncs2/lib/python3*/site-packages/websocket/tests \
        /opt/ncs2/lib/python3*/site-packages/certifi/tests

# NB: the bulk left is kubernetes/client (api and models, generated), and their sources
# are mostly docstrings. Shipped compiled only (a sourceless .pyc beside each module, which
# Python imports directly) they take 25 MB instead of 57 MB; tracebacks inside the client
# then show no source lines (the labeller's own frames keep theirs).
RUN site="$(echo /opt/ncs2/lib/python3*/site-packages)" \
    && /opt/ncs2/bin/python -m compileall -q -b -j 0 "$site/kubernetes/client" \
    && find "$site/kubernetes/client" -name '*.py' -delete \
    && find "$site/kubernetes/client" -name '__pycache__' -prune -exec rm -rf {} +

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="ncs2-feature-discovery" \
      org.opencontainers.image.description="NFD labeller for Intel Neural Compute Stick 2" \
      org.opencontainers.image.licenses="Apache-2.0"

# Debian's interpreter only (the venv points at /usr/bin/python3); libudev1 for pyudev.
# DL3008: as above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libudev1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

COPY --from=build /opt/ncs2 /opt/ncs2

# The root filesystem is read-only in the cluster: no bytecode is written at run time
# (the venv ships compiled).
ENV PATH=/opt/ncs2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# uid 0 on purpose: NFD's features.d on the host is root-owned (0755), and its owner
# writes there without any capability, so the pod drops them all (deploy/base).
# hadolint ignore=DL3002
USER 0:0

EXPOSE 8089

# Exec form: no shell is needed at run time.
ENTRYPOINT ["/opt/ncs2/bin/ncs2-labeller"]
