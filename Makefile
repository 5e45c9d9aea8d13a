# Patronage: `make run` serves the demo, `make test` checks everything. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PATRONAGE_BASE_URL ?= http://127.0.0.1:8000

.PHONY: install run serve test lint typecheck unit audit bench soak translations clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## run: install, migrate the embedded SQLite database under var/, load the demo, serve :8000 with a worker
run: install
	mkdir -p var
	$(BIN)/patronage migrate
	$(BIN)/patronage demo
	# No SMTP server on a laptop: member sign-in links are written to the log unless you configure one.
	PATRONAGE_MAIL_BACKEND=$${PATRONAGE_MAIL_BACKEND:-log} $(BIN)/patronage serve --host 127.0.0.1 --port 8000

## test: lint, type-check and the whole test suite (SQLite always, PostgreSQL when reachable)
test: lint typecheck unit

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

## audit: bandit over src/ and pip-audit over the installed dependencies (scripts/security-audit.sh)
audit: install
	BIN=$(BIN) scripts/security-audit.sh

## bench: every benchmark in bench/, one JSON document on stdout
bench: install
	$(BIN)/python bench/run.py

## soak: the long forms of the reliability battery
soak: install
	PATRONAGE_SOAK=1 $(BIN)/python -m pytest -q -m soak

## translations: extract UI strings and update the catalogs (then translate the new entries)
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --project Patronage -o src/patronage/web/locale/messages.pot .
	$(BIN)/pybabel update -i src/patronage/web/locale/messages.pot -d src/patronage/web/locale -D messages --no-fuzzy-matching --ignore-obsolete -w 120

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
