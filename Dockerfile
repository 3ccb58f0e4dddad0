# Slim image: dependencies first (cached layer), then the source; runs as a non-root user with SQLite on /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3 \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080

WORKDIR /app

# Dependencies only: this layer is rebuilt when the pins change, not when the code does.
COPY requirements.lock pyproject.toml ./
RUN grep -v -E '^(pytest|pytest-asyncio|pytest-timeout|hypothesis|ruff|iniconfig|pluggy|Pygments|sortedcontainers)==' requirements.lock > /tmp/runtime.lock \
    && pip install -r /tmp/runtime.lock

COPY bot ./bot
COPY cogs ./cogs
COPY migrations ./migrations
# The code runs from /app (python -m bot finds ./bot; migrations/ sits beside it), so no package install is needed.
RUN useradd --create-home --uid 10001 botuser \
    && mkdir -p /data && chown botuser:botuser /data

USER botuser
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"WEB_PORT\", \"8080\")}/healthz', timeout=4)" || exit 1

CMD ["python", "-m", "bot"]
