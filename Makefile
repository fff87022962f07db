# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv when it is missing. PyTorch comes in as the CPU build
# torch==2.13.0 before stable-baselines3, so pip pulls no CUDA packages.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest pytest-slow bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,bench,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/slatewise demo

test: $(STAMP)
	$(BIN)/ruff check bandits simulator serving experiments tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n 2
	$(BIN)/pytest -n 2 -m slow

lint: $(STAMP)
	$(BIN)/ruff check bandits simulator serving experiments tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n 2

pytest-slow: $(STAMP)
	$(BIN)/pytest -n 2 -m slow

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
