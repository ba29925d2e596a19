# ember: `make run` and `make test` are the two set-up commands; each installs .venv from uv.lock.
#
# Every dependency, transitive ones and all extras included, is pinned with hashes in uv.lock.
# uv itself is pinned with hashes in requirements/uv.txt and lives in its own small venv (.uv),
# so `uv sync` never removes the tool it is running from.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TOOLS  := .uv
UV     := $(TOOLS)/bin/uv
STAMP  := $(VENV)/.installed
# uv finds the project's venv through this, uses the Python given, and never downloads one.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint typecheck check bench lock upgrade python-version clean

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "ember needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing) (set PYTHON=python3.11 or newer)"; exit 1; }

$(UV): requirements/uv.txt | python-version
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	touch $(UV)

# --locked: install exactly uv.lock; stop if pyproject.toml changed without re-locking.
$(STAMP): pyproject.toml uv.lock | $(UV) python-version
	$(UV) sync --quiet --locked --all-extras --python $(PYTHON)
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ember run

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check core bots tests bench
	$(BIN)/ruff format --check core bots tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

# After changing a range in pyproject.toml: solve the lock again, changing as little as it can.
lock: | $(UV)
	$(UV) lock --python $(PYTHON)

# Move every dependency to the newest version the ranges allow. Then run `make test` and commit uv.lock.
upgrade: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	@echo "uv.lock re-solved; run 'make check', then commit uv.lock"

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
