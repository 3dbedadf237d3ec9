# pygslb: the controller, REST API and built-in DNS server in one small, non-root image.
#
#   docker build -t pygslb:0.1.0 .
#   docker run --rm -p 8080:8080 -p 5353:5353/udp -e GSLB_API_TOKEN=change-me pygslb:0.1.0
#
# The final stage holds the Python runtime and a virtualenv, nothing else: no compiler, no pip cache,
# no sources. It writes nothing outside /tmp (GSLB_DATA_DIR), so it runs with a read-only root
# filesystem; bytecode is compiled at build time.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: resolve and install the package into a self-contained virtualenv ---------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
RUN python -m venv /opt/pygslb
COPY pyproject.toml README.md ./
COPY app/ ./app/
# Every dependency ships wheels for CPython 3.12 (x86_64 and arm64), so no compiler is needed here either.
RUN /opt/pygslb/bin/pip install --no-compile . \
    && /opt/pygslb/bin/python -m compileall -q -j 0 /opt/pygslb/lib \
    && /opt/pygslb/bin/gslb --help > /dev/null

# --- run ------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pygslb" \
      org.opencontainers.image.description="k8gb-compatible global server load balancer with a REST API and tracing" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 gslb \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gslb
COPY --from=build /opt/pygslb /opt/pygslb
ENV PATH=/opt/pygslb/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GSLB_DATA_DIR=/tmp/gslb \
    API_ADDRESS=0.0.0.0:8080 \
    DNS_ADDRESS=0.0.0.0:5353
USER 10001:10001
WORKDIR /tmp
# REST API + /metrics + Swagger UI, then the authoritative DNS server (unprivileged port; Services map 53).
EXPOSE 8080/tcp 5353/udp 5353/tcp
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["gslb"]
CMD ["serve"]
