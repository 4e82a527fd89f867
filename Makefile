# The two commands: `make demo` and `make test` (all tiers; `make test-fast` for the edit loop). Each builds .venv from pyproject.toml
# (pinned) and constraints.txt (the full resolved set) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint venv clean bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "insitu needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/insitu demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks profiles
	$(BIN)/ruff format --check src tests benchmarks profiles
	$(BIN)/lint-imports

# Redis and PostgreSQL (for the tests marked `services`) are installed if missing and started on
# loopback by scripts/services.sh, which writes their addresses to .services/env.
# The unit and device tiers mostly wait on sockets and wall time: four pytest-xdist workers (whole
# files per worker: a module's beamline fixture stays one). The system tier in two parts: tests
# whose results do not bend with load (held experiment time, subprocesses that are waited for)
# on two workers beside each other, then those marked `alone` (wall-clock latency, kills on a
# wall-clock schedule, services), which mostly wait on processes they start: two at a time,
# never beside the CPU-bound campaigns of the first part (one at a time they took 525 s, two
# 324 s). Three at a time took 267 s but failed the writer's 1 s durability bound in one of
# three clean-clone runs (events 124-131 missing after a SIGKILL): two it stays.
# One BLAS thread per process: the test workers already fill both cores, and OpenBLAS threads
# spinning for a core another worker holds made the fast tier 20 % slower (196 s against 163 s).
test test-fast: export OPENBLAS_NUM_THREADS = 1
test test-fast: export OMP_NUM_THREADS = 1
# Bytecode caches on even where the environment turns them off (PYTHONDONTWRITEBYTECODE=1 on this
# machine): otherwise every pytest worker rewrites the asserts of all test modules again and every
# child process compiles insitu again (collection 12.8 s -> 7.1 s per process; caches gitignored).
test test-fast: export PYTHONDONTWRITEBYTECODE =

test: lint
	scripts/services.sh start
	$(BIN)/pytest -m "unit or device" $(FAST_TIER_WORKERS)
	. ./.services/env && $(BIN)/pytest -m "system and not alone" $(SYSTEM_TIER_WORKERS)
	. ./.services/env && $(BIN)/pytest -m "system and alone" $(SYSTEM_TIER_WORKERS)

FAST_TIER_WORKERS := -n 4 --dist loadfile
# Whole files per worker, in the order tests/conftest.py puts them (the minutes-long first):
# pytest-xdist's default reorders files by their number of tests, which started the one-test
# demo and queue files last and left one worker running them alone for 2-3 minutes.
SYSTEM_TIER_WORKERS := -n 2 --dist loadfile --no-loadscope-reorder

# The edit loop: the unit and device tiers only (no services, no subprocess campaigns).
test-fast: $(STAMP)
	$(BIN)/pytest -m "unit or device" --strict-budget $(FAST_TIER_WORKERS)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) insitu-data exports .pytest_cache .ruff_cache
