# The two commands of the README: `make demo` (set up, run the main job) and `make test`.
# Everything installs into .venv; a fresh machine needs only Python >= 3.11 and a C compiler.
# The interpreter .venv is made from. On a CPython built with profile-guided and link-time optimisation the
# engine's hot path runs about 12% fewer instructions with 12-14% fewer I-cache misses (callgrind, the perps
# bench) than on one built without, as pyenv builds by default; Debian's /usr/bin/python3 is such a build. So
# /usr/bin/python3 when it is Python >= 3.11 with venv and its C headers, else python3; `make PYTHON=...` overrides
# (an existing .venv keeps its interpreter: `make clean` first).
SYSTEM_INCLUDE := $(shell /usr/bin/python3 -c 'import sys, sysconfig, ensurepip; print(sys.version_info >= (3, 11) and sysconfig.get_paths()["include"])' 2>/dev/null)
PYTHON ?= $(if $(wildcard $(SYSTEM_INCLUDE)/Python.h),/usr/bin/python3,python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.exos-installed
# exos.native.COMPILED (read from its source, as core/setup.py does): mypyc compiles them at install; after a change,
# the targets that run the engine rebuild the core alone (a stale build runs them as Python, slower), and the lint
# does not wait for it
COMPILED_NAMES := $(shell sed -n 's/^COMPILED = (\(.*\))$$/\1/p' core/src/exos/native.py | tr -d '",')
COMPILED_CORE := $(foreach name,$(COMPILED_NAMES),core/src/exos/$(name).py) core/src/exos/native.py
CORE_BUILD := $(VENV)/.exos-core-compiled
CORE_SOURCES := core/pyproject.toml core/setup.py core/_cffi_src/build_book.py $(wildcard core/csrc/*.c core/csrc/*.h) \
	plugins/spot/pyproject.toml plugins/prediction/pyproject.toml plugins/compliance/pyproject.toml \
	plugins/oracles/pyproject.toml plugins/perps/pyproject.toml plugins/perps/setup.py plugins/perps/src/exos_perps/market.py

.PHONY: demo spot-demo worldcup unified test ctest pytest lint bench clean

$(STAMP): requirements/dev.txt $(CORE_SOURCES)
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ./core -e ./plugins/spot -e ./plugins/prediction -e ./plugins/compliance -e ./plugins/oracles -e ./plugins/perps
	@touch $@ $(CORE_BUILD)

# the build requirements are pinned in requirements/dev.txt, so the rebuild needs no isolated environment
$(CORE_BUILD): $(STAMP) $(COMPILED_CORE)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ./core
	@touch $@

demo: $(CORE_BUILD)
	$(BIN)/exos serve examples/worldcup-2026.toml --journal .exos/worldcup-journal

spot-demo: $(CORE_BUILD)
	$(BIN)/exos simulate examples/spot.toml --orders 200000 --seed 42

worldcup: $(CORE_BUILD)
	$(BIN)/exos simulate examples/worldcup-2026.toml --seed 7

unified: $(CORE_BUILD)
	$(BIN)/exos simulate examples/unified.toml --seed 7

test: $(STAMP) ctest pytest

ctest:
	bash core/csrc/tests/run.sh

# then the engine's and the perpetuals' tests again as Python (the first pass ran their mypyc builds: exos.native,
# exos_perps._market_c); test_native.py and test_compiled.py choose each build themselves and ran both already
pytest: $(CORE_BUILD)
	$(BIN)/python -m pytest
	EXOS_PURE_PYTHON=1 $(BIN)/python -m pytest -q core/tests plugins/perps/tests \
		--ignore=core/tests/test_native.py --ignore=plugins/perps/tests/test_compiled.py

lint: $(STAMP)
	$(BIN)/ruff check core/src core/tests tests bench plugins
	$(BIN)/ruff format --check core/src core/tests tests bench plugins
	$(BIN)/mypy

bench: $(CORE_BUILD)
	$(BIN)/python bench/book_bench.py --n 1000000 --runs 3 --write bench/results.json
	$(BIN)/python bench/engine_bench.py --n 1000000 --write bench/engine_results.json
	$(BIN)/python bench/prediction_bench.py --n 1000000 --write bench/results.json
	$(BIN)/python bench/perps_bench.py --n 1000000 --write bench/results.json
	$(BIN)/python bench/server_bench.py --seconds 5 --write bench/results.json

clean:
	rm -rf $(VENV) core/build core/src/exos/*.so core/src/exos__mypyc*.so core/src/exos/_compiled.json core/src/*.egg-info plugins/perps/build plugins/perps/src/exos_perps/_market_c*
