# Two commands for a newcomer: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := demo-lab

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@# Kerberos (python-gssapi, pykrb5) builds against MIT krb5's headers (libkrb5-dev):
	@# best effort, the Kerberos tests skip with that reason without it.
	@$(BIN)/python -m pip install -q -e '.[kerberos]' 2>/dev/null \
	  || echo "note: the kerberos extra did not build (apt-get install libkrb5-dev); Kerberos tests will skip"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	@$(BIN)/fleet lab down --dir $(DEMO) --quiet >/dev/null 2>&1 || true
	@$(BIN)/fleet lab up --dir $(DEMO) --hosts 25 --seed 7 --faults mixed --detach
	@echo "fleet audit -i $(DEMO)/inventory.yml --timeout 8   (one lab host hangs on purpose: 8 s)"
	@$(BIN)/fleet audit -i $(DEMO)/inventory.yml --timeout 8; rc=$$?; \
	  $(BIN)/fleet lab down --dir $(DEMO); \
	  echo "fleet audit exited $$rc (0 compliant, 1 findings, 3 some hosts unreachable/unfinished)."; \
	  echo "The lab's seeded faults are in $(DEMO)/truth.json. To see the fixes, keep a lab running:"; \
	  echo "  $(BIN)/fleet lab up --dir lab --hosts 25 --faults mixed --detach && $(BIN)/fleet plan -i lab/inventory.yml"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DEMO)
