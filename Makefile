# The two set-up commands: `make run` (the whole stack) and `make test` (the whole suite).
.PHONY: run test lint bench mutate setup

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

# Mutation testing of the code that guards visitors, leads and secrets (docs/mutation.md); about
# half an hour on two cores. Not part of `make test`.
mutate: setup
	rm -rf mutants && mkdir -p mutants && ln -s ../.venv mutants/.venv
	.venv/bin/mutmut run --max-children 2
	.venv/bin/python scripts/mutation_report.py --write docs/mutation.md
