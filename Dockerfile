# Image for every clinic service (API and workers); the command is chosen
# per service in docker-compose.yml. Default command: the HTTP API.

# ---- docs-assets: the documentation sites' browser files, from npm -----------
# Exactly the versions and integrity hashes docs-assets/package-lock.json pins; no
# package's install scripts run. Only node_modules leaves this stage, so the
# runtime image has no Node or npm.
FROM node:20-slim AS docs-assets
WORKDIR /assets
COPY docs-assets/package.json docs-assets/package-lock.json docs-assets/.npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund --omit=peer

# ---- builder: install the locked runtime deps, then the package, into a venv --
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv
ENV PATH="${VIRTUAL_ENV}/bin:${PATH}"

RUN python -m venv "${VIRTUAL_ENV}"

WORKDIR /build
# Exactly the versions in the lock, each file checked against its hash: the image
# runs what scripts/audit checks, not whatever was newest on the day of the build.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md hatch_build.py ./
COPY docs-assets/ ./docs-assets/
# Where the build hook (hatch_build.py) looks before it would run npm itself.
COPY --from=docs-assets /assets/node_modules ./docs-assets/node_modules/
COPY src/ ./src/
# The hook only warns when it has no assets; an image without them must not build.
RUN pip install --no-cache-dir --no-deps . \
    && test -f "${VIRTUAL_ENV}/lib/python3.11/site-packages/clinic/api/docs_assets/manifest.json"

# ---- runtime ----------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv
ENV PATH="${VIRTUAL_ENV}/bin:${PATH}"

RUN groupadd --system --gid 10001 clinic \
    && useradd --system --no-log-init --uid 10001 --gid clinic \
        --home-dir /app --shell /usr/sbin/nologin clinic

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The example doctors; compose points CLINIC_DOCTORS_FILE here unless told otherwise.
COPY doctors.example.json ./
USER 10001:10001

EXPOSE 3000

CMD ["uvicorn", "clinic.api:app", "--host", "0.0.0.0", "--port", "3000"]
