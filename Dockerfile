# syntax=docker/dockerfile:1
#
# Threadline images: one multi-stage build with one target per process.
#
#   docker build --target api .      # targets: api, assistant, streamer, presence, migrate
#
# compose.yaml builds every target from this file. First-party packages are installed non-editable
# straight from the build context through read-only bind mounts (no source layer in the image); each
# target installs only the package(s) it runs on top of a common base, and runs as an unprivileged user.
# Health checks live in compose.yaml (GET /readyz), not here.

ARG PYTHON_IMAGE=python:3.12-slim

# ---- python: interpreter, environment and the unprivileged user shared by every target ----
FROM ${PYTHON_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN groupadd --system --gid 10001 threadline \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin threadline
WORKDIR /app

# ---- base: the shared package (DTOs, settings, database and Redis helpers) for the HTTP services ----
FROM python AS base
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=shared,target=/src/shared,rw \
    pip install /src/shared

# ---- api-package: the api code base; api and assistant are two entry points of it ----
FROM base AS api-package
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=services/api,target=/src/api,rw \
    pip install /src/api

FROM api-package AS api
EXPOSE 8000
USER threadline
CMD ["threadline-api"]

FROM api-package AS assistant
EXPOSE 8003
USER threadline
CMD ["threadline-assistant"]

FROM base AS streamer
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=services/streamer,target=/src/streamer,rw \
    pip install /src/streamer
EXPOSE 8001
USER threadline
CMD ["threadline-streamer"]

FROM base AS presence
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=services/presence,target=/src/presence,rw \
    pip install /src/presence
EXPOSE 8002
USER threadline
CMD ["threadline-presence"]

# ---- migrate: one-shot; applies db/ migrations to DATABASE_URL and exits 0 (needs only threadline-db) ----
FROM python AS migrate
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=db,target=/src/db,rw \
    pip install /src/db
USER threadline
CMD ["threadline-migrate"]
