# 红驿 Hongyi — multi-stage image: build the PWA with Node, run the API as a non-root user.
# Consistent with README: migrations run at start, then the server. Configure with DATABASE_URL,
# REDIS_URL, PUBLIC_BASE_URL, HONGYI_KEY_FILE (mount a volume at /data for the key file and SQLite).

FROM node:20-bookworm-slim AS pwa
WORKDIR /src
COPY pwa/ ./pwa/
RUN if [ -f pwa/package.json ]; then \
      cd pwa && npm install --no-audit --no-fund && npm run build; \
    else \
      mkdir -p pwa/dist; \
    fi

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HONGYI_DATA_DIR=/data HONGYI_PWA_DIST=/app/pwa/dist HOST=0.0.0.0 PORT=8000 WORKERS=1
WORKDIR /app
COPY pyproject.toml requirements.lock ./
COPY server/ ./server/
COPY migrations/ ./migrations/
COPY piccolo_conf.py ./
COPY scripts/backup_sqlite.py ./scripts/
RUN pip install --no-cache-dir -c requirements.lock -e . \
 && useradd --system --uid 10001 --home /app hongyi \
 && mkdir -p /data && chown hongyi /data
COPY --from=pwa /src/pwa/dist ./pwa/dist
USER hongyi
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health').status == 200 else 1)"
# Migrate, then serve. With PostgreSQL set WORKERS>1; SQLite takes one worker (single writer).
CMD ["sh", "-c", "python -m server migrate && exec python -m server serve --host \"$HOST\" --port \"$PORT\" --workers \"$WORKERS\""]
