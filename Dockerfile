# syntax=docker/dockerfile:1
# Emporium's images, from one file:
#   docker build --target service -t emporium .           # every Python service; the command
#   docker run emporium python -m services.order          #   picks one (also kit.schema, the job)
#   docker build --target gateway -t emporium-gateway .   # Envoy + the config renderer
# Dependencies come from uv.lock (uv sync --frozen); the final stages hold no build tools, run as
# user 10001 and work on a read-only root filesystem (they write only under /tmp).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# uv at the version pyproject.toml pins (tool.uv required-version).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Swagger UI's assets for the gateway's /docs/ (gateway/services.yaml swagger_ui_version).
FROM node:20.19.6-bookworm-slim AS swagger-ui
ARG SWAGGER_UI_VERSION=5.35.0
WORKDIR /swagger-ui
RUN npm install --ignore-scripts --no-audit --no-fund --no-save --loglevel=error \
        "swagger-ui-dist@${SWAGGER_UI_VERSION}"

# The locked virtual environment (runtime dependencies only), built once for both images.
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
# The project itself is not installed: its code is copied as is and found through PYTHONPATH.
# Two environments: with Envoy (the gateway's) and without (the services').
RUN uv sync --frozen --no-dev --group gateway --no-install-project \
    && mv /opt/venv /opt/venv-gateway \
    && uv sync --frozen --no-dev --no-install-project

# What every final image shares: the non-root user, the code, the environment.
FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10001 emporium \
    && useradd --system --uid 10001 --gid emporium --home-dir /app --no-create-home emporium
WORKDIR /app
COPY gen/ gen/
COPY kit/ kit/
COPY services/ services/
COPY gateway/ gateway/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/gen/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EMPORIUM_VAR=/tmp/emporium
USER 10001:10001

FROM base AS service
COPY --from=build /opt/venv /opt/venv
# No default service: name one (python -m services.<name>).
CMD ["python", "-c", "print('usage: python -m services.<name> | python -m kit.schema <name>...')"]

FROM base AS gateway
COPY --from=build /opt/venv-gateway /opt/venv
COPY --from=swagger-ui /swagger-ui /opt/emporium/cache/swagger-ui-5.35.0
ENV EMPORIUM_CACHE=/opt/emporium/cache EMPORIUM_GATEWAY_ADDRESS=0.0.0.0
EXPOSE 8080
# Renders the Envoy config from gateway/services.yaml and this environment (the services' hosts,
# EMPORIUM_<NAME>_GRPC_HOST), then becomes Envoy.
ENTRYPOINT ["python", "-m", "gateway.render", "--exec", "--out", "/tmp/gateway/envoy.yaml"]
