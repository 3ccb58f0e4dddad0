# Two commands for a fresh machine: `make run` and `make test`. Both create .venv and install pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run check test soak lint format bench sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

$(STAMP_TEST): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@ $(STAMP_RUN)

# A first `make run` starts from the example; an existing .env is never overwritten (no prerequisites).
.env:
	cp .env.example .env
	@echo "Created .env from .env.example: set DISCORD_TOKEN and HYPEREAL_API_KEY (or HYPEREAL_SANDBOX=1) in it."

## run: start the bot from .env (see .env.example)
run: $(STAMP_RUN) | .env
	$(BIN)/python -m bot

## check: settings, database, Discord token, Hypereal key and PUBLIC_URL, without starting the bot; the invite link
check: $(STAMP_RUN) | .env
	$(BIN)/python -m bot check

## test: ruff, then the whole suite (no network; soak tests excluded)
test: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 4

## soak: the long soak tests only
soak: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m soak

format: $(STAMP_TEST)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## sandbox: run the sandbox Hypereal provider on 127.0.0.1:8765
sandbox: $(STAMP_RUN)
	$(BIN)/python -m bot.sandbox --port 8765

## bench: every benchmark, then one Markdown table (figure | ours | baseline | ratio | bar); fails only if a script does
bench: $(STAMP_TEST)
	$(BIN)/python bench/table.py

clean:
	rm -rf $(VENV)
