# scoring-lab: two commands do everything on a fresh machine.
#   make book   install into .venv, execute every chapter (default profile), render the HTML book
#   make test   install into .venv, run the test suite (strict book build, browser check, determinism check included)
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PIP     := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile
# `make test` runs the suite in this many pytest-xdist workers (auto: one per physical core; 0: in one process),
# each chapter set in one worker (--dist loadgroup), and each worker's computations in its share of the cores
# (tests/conftest.py sets OMP_NUM_THREADS: one thread a worker on 2 cores). Measured on 2 cores: pytest 327 s
# in two workers against 624 s in one process (257 s since the real-data shapes share a kernel; `make test`
# from a clean clone 5m19s); two workers with torch's default two threads each spin and wait on each other
# (a real-data shape's chapters: 182 s side by side against 92 s with one thread each).
TEST_WORKERS ?= auto
PROFILE ?= default
CHAPTER ?=

.PHONY: install test book chapters html notebooks reproduce-check benchmarks clean clean-results

install: $(STAMP)

# torch first, alone: its CPU wheel is pinned in requirements.lock, but asking for it
# on its own keeps any resolver step from pulling a multi-GB CUDA build.
# Then the pinned set (requirements.lock: exactly what `scoring-lab[book,test]` needs, as
# tests/test_dependencies.py checks), and the project itself, editable. The lock is complete, so pip
# resolves nothing (--no-deps) and `pip check` then proves every requirement is met. pip compiles bytecode
# on one core; compileall does it on all of them (--no-compile, then compileall -j 0): 61 s instead of 137 s
# here. The bytecode must be there: where PYTHONDONTWRITEBYTECODE is set (as on CI machines) nothing else
# writes it, and every kernel would compile torch's and transformers' sources again (13 s a chapter's
# imports instead of 6). It is a cache, so a file that does not compile under this Python (torch ships
# one for 3.12) is skipped, as pip skips it; so are the packages' own test suites (tests/, test/: 4,040 of
# 20,008 files, never imported here), 23 s instead of 31.
# Then MathJax 3 for the offline book (scoring_lab.sphinx_offline serves it from _static):
# npm mathjax@3.2.2's es5 folder unpacked into .venv/share/mathjax/ (needs node and npm).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --no-deps "$$(grep -E '^torch==' requirements.lock)"
	$(PIP) --no-deps -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check --disable-pip-version-check
	$(BIN)/python -m compileall -q -j 0 -x '/tests?/' "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
	test -f $(VENV)/share/mathjax/.mathjax-3.2.2 || { \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  npm pack --silent --pack-destination "$$tmp" mathjax@3.2.2 >/dev/null && \
	  rm -rf $(VENV)/share/mathjax && mkdir -p $(VENV)/share/mathjax && \
	  tar -xzf "$$tmp/mathjax-3.2.2.tgz" -C $(VENV)/share/mathjax --strip-components=2 package/es5 && \
	  touch $(VENV)/share/mathjax/.mathjax-3.2.2; }
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

book: chapters html

chapters: $(STAMP)
	$(BIN)/scoring-lab book execute --profile $(PROFILE) $(if $(CHAPTER),--chapter $(CHAPTER))

html: $(STAMP)
	$(BIN)/jupyter-book build . --quiet
	@echo "Book: $(CURDIR)/_build/html/index.html"

# Every chapter on the smoke profile twice, each from an empty cache; fails if any results CSV differs
# (wall-clock columns excepted, and listed). PROFILE=default checks the book itself (two cold runs).
reproduce-check: $(STAMP)
	$(BIN)/scoring-lab reproduce-check --profile $(if $(filter command line,$(origin PROFILE)),$(PROFILE),smoke) $(if $(CHAPTER),--chapter $(CHAPTER))

# Rewrite the paired notebooks/*.ipynb (for Colab and papermill) from their MyST sources.
notebooks: $(STAMP)
	$(BIN)/scoring-lab book sync

benchmarks: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build book/chapters

clean-results:
	rm -rf results
