# edgeproxy: an image transformation proxy, meant to sit behind a CDN as its origin.
#
#   docker build -t edgeproxy .                  (or: podman build --format docker -t edgeproxy .)
#   docker run -p 8080:8080 \
#     -e EDGEPROXY_SIGNING_KEY=change-me \
#     -e EDGEPROXY_ORIGINS='{"media":"/images"}' -v /srv/images:/images:ro \
#     edgeproxy
#
# Configuration is by environment only: every setting is an EDGEPROXY_* variable (docs/configuration.md;
# config/edgeproxy.example.toml lists them all). The image bakes in no key and no
# config file. EDGEPROXY_SIGNING_KEY is required (the proxy refuses to start without it); pass it
# from a secret store, not on a shared command line. EDGEPROXY_ORIGINS is a JSON object of
# name -> folder, http(s):// base URL or s3://bucket/prefix; mount a local folder read-only. Without
# it the proxy serves the bundled sample images as the origin "samples".
#
# Build arguments:
#   BASE_IMAGE  any Debian-like image with python3 >= 3.11 and its venv module (default
#               python:3.11-slim; our CI uses a local Debian bookworm image with python3 and
#               python3-venv, scripts/container-test). Both stages use it, so the venv built in the
#               first runs in the second.
#   EXTRAS      optional decoders, comma-separated: "heif", "jxl" or "heif,jxl" installs
#               edgeproxy[heif,jxl]. These are GPL-licensed binaries (pillow-heif's wheel bundles
#               x265, GPL-2.0; pillow-jxl-plugin is GPL-3.0-or-later): an image built with them ships
#               GPL code, with the obligations that brings. See docs/formats.md.
#   PIP_INDEX_URL  a PyPI mirror for the build, when PyPI itself is out of reach (build stage only).
#   VERSION, REVISION  values of the OCI labels of the same names.
#
# A CA bundle for pip, behind a TLS-intercepting proxy: give it as the build secret "pip-ca",
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
#   podman build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
# It is mounted at /run/host-ca.crt only for the two pip RUN lines of the build stage, with
# PIP_CERT=/run/host-ca.crt set in those lines only: it is never written to a layer, and the runtime
# image has neither the file nor the variable. (Not `podman build -v`: a build volume is mounted into
# every RUN of every stage and leaves an empty mount point in the runtime image.)
#
# libvips comes from the pyvips-binary wheel: no apt packages, no compilers in either stage.
# HEALTHCHECK is a Docker-format instruction: with podman/buildah build with --format docker, or it
# is dropped (OCI images have no healthcheck).

ARG BASE_IMAGE=python:3.11-slim

# --- build: a virtual environment in /opt/edgeproxy -------------------------------------------------
FROM ${BASE_IMAGE} AS build
ARG EXTRAS=""
ARG PIP_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/edgeproxy

# Dependencies first (their own layer, reused while only the code changes), read from pyproject.toml
# with the extras asked for; an unknown extra stops the build.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-ca,target=/run/host-ca.crt \
    set -eu; \
    if [ -s /run/host-ca.crt ]; then export PIP_CERT=/run/host-ca.crt; fi; \
    if [ -n "$PIP_INDEX_URL" ]; then export PIP_INDEX_URL; else unset PIP_INDEX_URL; fi; \
    python3 -c 'import os, tomllib; \
project = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [e.strip() for e in os.environ.get("EXTRAS", "").split(",") if e.strip()]; \
print("\n".join(project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]))' \
        > /tmp/requirements.txt; \
    /opt/edgeproxy/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# Then the package itself (only what `pip install .` reads: .dockerignore keeps the rest out).
COPY README.md ./
COPY edgeproxy ./edgeproxy
RUN --mount=type=secret,id=pip-ca,target=/run/host-ca.crt \
    set -eu; \
    if [ -s /run/host-ca.crt ]; then export PIP_CERT=/run/host-ca.crt; fi; \
    if [ -n "$PIP_INDEX_URL" ]; then export PIP_INDEX_URL; else unset PIP_INDEX_URL; fi; \
    /opt/edgeproxy/bin/pip install --no-cache-dir --no-deps ".${EXTRAS:+[$EXTRAS]}"; \
    /opt/edgeproxy/bin/pip check; \
    /opt/edgeproxy/bin/python -c 'import pyvips; print("libvips %d.%d.%d" % tuple(pyvips.version(i) for i in range(3)))'; \
    /opt/edgeproxy/bin/python -m pip uninstall --no-cache-dir -y -q pip setuptools

# --- runtime: the base image plus the venv, run as an unprivileged user ----------------------------
FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
ARG VERSION=""
ARG REVISION=""
LABEL org.opencontainers.image.title="edgeproxy" \
      org.opencontainers.image.description="Image transformation proxy: signed transform URLs, libvips pipeline, CDN-ready caching headers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Fixed UID/GID 10001 (match it when you set file permissions on mounted origins); no home, no shell.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --no-log-init edgeproxy

COPY --from=build /opt/edgeproxy /opt/edgeproxy

ENV PATH="/opt/edgeproxy/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EDGEPROXY_HOST=0.0.0.0 \
    EDGEPROXY_PORT=8080 \
    OPENBLAS_NUM_THREADS=1

WORKDIR /app
USER 10001:10001
EXPOSE 8080

# /healthz answers 200 while the process is up (GET /readyz also checks encoders and origins: use
# that for an orchestrator's readiness probe). urllib, since curl is not in python:3.11-slim; no
# proxy, whatever HTTP(S)_PROXY the container is given for its origins.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/opt/edgeproxy/bin/python", "-c", "import os, sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/healthz' % os.environ.get('EDGEPROXY_PORT', '8080'), timeout=4); sys.exit(r.status != 200)"]

# uvicorn stops gracefully on SIGTERM (in-flight requests finish), as PID 1 too.
STOPSIGNAL SIGTERM
CMD ["edgeproxy", "serve"]
