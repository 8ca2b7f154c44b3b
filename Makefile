# The two set-up commands: `make run` (the whole stack) and `make test` (the whole suite).
.PHONY: run test lint bench setup

setup:
	@scripts/bootstrap.sh

run: setup
	.venv/bin/chatctl stack

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache
	.venv/bin/pytest -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache

bench:
	@scripts/bootstrap.sh --bench
	.venv/bin/python -m bench
