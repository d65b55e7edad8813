# scoring-lab: two commands do everything on a fresh machine.
#   make book   install into .venv, execute every chapter (default profile), render the HTML book
#   make test   install into .venv, run the test suite
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROFILE ?= default
CHAPTER ?=

.PHONY: install test book chapters html notebooks benchmarks clean clean-results

install: $(STAMP)

# torch first, alone: its CPU wheel is pinned in requirements.lock, but asking for it
# on its own keeps any resolver step from pulling a multi-GB CUDA build.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$$(grep -E '^torch==' requirements.lock)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

book: chapters html

chapters: $(STAMP)
	$(BIN)/scoring-lab book execute --profile $(PROFILE) $(if $(CHAPTER),--chapter $(CHAPTER))

html: $(STAMP)
	$(BIN)/jupyter-book build . --quiet
	@echo "Book: $(CURDIR)/_build/html/index.html"

# Rewrite the paired notebooks/*.ipynb (for Colab and papermill) from their MyST sources.
notebooks: $(STAMP)
	$(BIN)/scoring-lab book sync

benchmarks: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build book/chapters

clean-results:
	rm -rf results
