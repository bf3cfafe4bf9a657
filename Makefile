# certrenew: the two commands users need are `make demo` and `make test`.
# Both install what they need on a fresh Debian/Ubuntu machine: a venv with the pinned
# dependencies and a Pebble >= 2.7 binary (see devstack/install-pebble.sh).

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEBBLE := .devstack/bin/pebble
SAMVENV := .venv-sam
SAM    := $(SAMVENV)/bin/sam
PYTEST_ARGS ?=

.PHONY: all install pebble test unit demo clean sam-tools validate build bench bench-memory bench-fleet

all: test

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "certrenew needs Python >= 3.11 (python3.11+ on PATH)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

$(PEBBLE): devstack/install-pebble.sh
	bash devstack/install-pebble.sh .devstack

pebble: $(PEBBLE)

$(SAM):
	@test -n "$(PYTHON)" || { echo "certrenew needs Python >= 3.11"; exit 2; }
	$(PYTHON) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --upgrade pip
	$(SAMVENV)/bin/pip install -q aws-sam-cli==1.170.0

sam-tools: $(SAM)

validate: $(SAM)
	$(SAM) validate --lint --template template.yaml

# `make build`: the deployable artifact in .aws-sam/build (then `sam deploy --guided`). sam build
# installs the Lambda dependencies with the runtime's Python, so a python3.13 must exist: on
# PATH, from pyenv or uv, or given as `make build PY313=/path/to/python3.13`. The sources are
# byte-compiled (unchecked-hash .pyc: /var/task is read-only, so Lambda could never cache them).
PY313 ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 \
	  $$HOME/.local/share/uv/python/cpython-3.13*/bin/python3.13 /usr/local/bin/python3.13; do \
	  q=$$(command -v $$p 2>/dev/null) && $$q -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
	  2>/dev/null && { echo $$q; break; }; done)
SAM_TEMPLATE ?= template.yaml
SAM_BUILD_DIR ?= .aws-sam/build
SAM_BUILD_FLAGS ?=

build: $(SAM)
	@test -n "$(PY313)" || { echo "make build needs Python 3.13, the functions' runtime:"; \
	  echo "  Debian 13 / Ubuntu 24.04+ (deadsnakes): apt install python3.13"; \
	  echo "  anywhere: pyenv install 3.13  or  uv python install 3.13  (then run make build again)"; \
	  echo "  or name one: make build PY313=/path/to/python3.13; with Docker: $(SAM) build --use-container"; exit 2; }
	PATH="$(dir $(PY313)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build --template $(SAM_TEMPLATE) \
	  --build-dir $(SAM_BUILD_DIR) $(SAM_BUILD_FLAGS)
	$(PY313) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(SAM_BUILD_DIR)

test: $(STAMP) $(PEBBLE) $(SAM)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) CERTRENEW_SAM=$(abspath $(SAM)) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP) $(SAM)
	CERTRENEW_SAM=$(abspath $(SAM)) $(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP) $(PEBBLE)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/certrenew demo

# The memory of a warm Lambda (RSS over 50 invocations of each handler), the cold start, certrenew
# vs certbot + certbot-dns-route53 on the devstack (certbot goes into bench/.venv), then the fleet
# of 1,000 certificates (about 15 minutes; figures in bench/results/); not part of test
bench: $(STAMP) $(PEBBLE) bench-memory bench-coldstart
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/python bench/run.py $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-fleet

bench-memory: $(STAMP) $(PEBBLE)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/python bench/memory.py $(BENCH_MEMORY_ARGS)

# The handler's cold import from the built, byte-compiled package (`make build` for this machine's
# architecture, into .aws-sam/bench-coldstart): best of several fresh processes, PASS/MISS at 0.4 s
.PHONY: bench-coldstart
bench-coldstart: $(STAMP) $(SAM)
	$(BIN)/python bench/coldstart.py --python "$(PY313)" $(BENCH_COLDSTART_ARGS)

# e.g. make bench-fleet BENCH_FLEET_ARGS="--count 50 --keep"
bench-fleet: $(STAMP) $(PEBBLE)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/python bench/fleet.py $(BENCH_FLEET_ARGS)

clean:
	rm -rf $(VENV) $(SAMVENV) .devstack .pytest_cache
