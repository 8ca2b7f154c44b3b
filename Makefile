# The two set-up commands: `make run` (the whole stack) and `make test` (the whole suite).
.PHONY: run test lint bench mutate mutate-critical setup messages

setup:
	@scripts/bootstrap.sh

run: setup
	.venv/bin/chatctl stack

test: setup
	@scripts/bootstrap.sh --tests  # PostgreSQL and npm for the real Unleash server
	@scripts/unleash-install.sh > /dev/null  # cached outside the clone, keyed by its lock file
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache
	.venv/bin/pytest -q -n 2 --dist loadgroup  # heavy tests share one worker (tests/conftest.py)
	.venv/bin/python scripts/mutate.py $(MUTATE_CRITICAL)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache

bench:
	@scripts/bootstrap.sh --bench
	.venv/bin/python -m bench

# Mutation testing of the code that guards visitors, leads and secrets (docs/mutation.md); under
# half an hour on two cores. Not part of `make test`, which runs the critical subset below.
mutate: setup
	.venv/bin/python scripts/mutate.py --write docs/mutation.md

# Secrets, personal data, the routing decision, hop-by-hop filtering and pins, against the unit
# tests and the pin store's: under a minute, so `make test` holds them to the floor every run.
MUTATE_CRITICAL = --module common/_signing.py --module common/_redaction.py \
	--module flags/_decision.py --module proxy/_headers.py --module proxy/_pins.py \
	--tests tests/unit --tests tests/integration/proxy/test_pin_store.py
mutate-critical: setup
	.venv/bin/python scripts/mutate.py $(MUTATE_CRITICAL)

# Reply catalogs (newchat/_replies.py): templates marked N_ or Reason are extracted into the
# template, and each language's .po gains the new msgids to translate (tests fail until it has).
messages: setup
	.venv/bin/pybabel extract -F babel.cfg -k N_ -k Reason --no-location --omit-header \
		--sort-output -o newchat/locales/messages.pot .
	.venv/bin/pybabel update -i newchat/locales/messages.pot -d newchat/locales --omit-header \
		--no-fuzzy-matching --ignore-obsolete --width 100
