# syntax=docker/dockerfile:1
#
# One image for every Slipway process: `slipway up` by default, or `server`, `mlflow`,
# `serve`, `scheduler`, `worker` as its command (deploy/compose.yaml, deploy/helm/slipway).
#
#   docker build -t slipway:dev .                 (or: buildah bud -t slipway:dev .)
#   docker build --build-arg EXTRAS="s3 ray" --build-arg EXTRA_PACKAGES="lightgbm~=4.6" .
#
# The builder installs exactly the locked dependencies (uv.lock, no dev group) into a
# virtual environment; the runtime stage is the same slim Python with that environment
# copied in: no compiler, no uv, no source tree, a non-root user.

# Both stages must use the same interpreter: the environment's python links to it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# uv comes from PyPI, like everything else the build installs.
ARG UV_VERSION=0.13.9
# Extras of the slipway package to install (pyproject.toml [project.optional-dependencies]);
# s3 is what an object-store artifact root needs (s3fs, boto3).
ARG EXTRAS="s3"
# More packages for the processes' model code and pipelines (e.g. "lightgbm~=4.6"), resolved
# against the locked environment.
ARG EXTRA_PACKAGES=""

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/slipway/venv

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN extras=""; for extra in ${EXTRAS}; do extras="${extras} --extra ${extra}"; done; \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3 ${extras}
COPY README.md ./
COPY src ./src
# --no-editable: slipway is installed into the environment as a package, so the runtime
# stage needs nothing from /src.
RUN extras=""; for extra in ${EXTRAS}; do extras="${extras} --extra ${extra}"; done; \
    uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3 ${extras} \
    && if [ -n "${EXTRA_PACKAGES}" ]; then \
        uv pip install --python /opt/slipway/venv/bin/python ${EXTRA_PACKAGES}; \
    fi

FROM ${PYTHON_IMAGE} AS runtime

# tini as PID 1 reaps the processes user code forks (steps, trials, jobs) and passes
# SIGTERM on, so a worker finishes its items and a gateway drains before it stops.
# libgomp1: OpenMP runtime that LightGBM and XGBoost wheels load from the system.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 slipway \
    && useradd --system --uid 10001 --gid slipway --home-dir /var/lib/slipway \
        --shell /usr/sbin/nologin slipway \
    && mkdir -p /var/lib/slipway /etc/slipway \
    && chown slipway:slipway /var/lib/slipway

COPY --from=builder /opt/slipway/venv /opt/slipway/venv

# Listen on every interface (a container is reached from outside it), which Slipway allows
# only with auth on: every plane then asks for an API token (`slipway tokens create`).
# SLIPWAY_HOME is local scratch (job folders; SQLite files only if no database URL is set).
ENV PATH=/opt/slipway/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/slipway/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/slipway \
    SLIPWAY_HOME=/var/lib/slipway \
    SLIPWAY_SERVER__HOST=0.0.0.0 \
    SLIPWAY_SERVER__AUTH=true \
    SLIPWAY_TRACKING__HOST=0.0.0.0 \
    SLIPWAY_SERVING__HOST=0.0.0.0

WORKDIR /var/lib/slipway
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001

# control plane and console, MLflow tracking, gateway
EXPOSE 8420 8421 8422

ENTRYPOINT ["/usr/bin/tini", "--", "slipway"]
CMD ["up"]
