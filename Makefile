# Two commands for a newcomer: `make demo` and `make test`. Both set up what they need.
# `make demo`: audit, plan, apply and audit again on a 25-host lab (scripts/demo.sh).
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
	@FLEET=$(BIN)/fleet sh scripts/demo.sh $(DEMO)

# Two workers: most of the suite waits on labs and deadlines, not on a core. --dist loadscope
# keeps a module's tests (and its lab) on one worker.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

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
