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

.PHONY: all install pebble test unit demo clean sam-tools validate bench

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

test: $(STAMP) $(PEBBLE) $(SAM)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) CERTRENEW_SAM=$(abspath $(SAM)) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP) $(SAM)
	CERTRENEW_SAM=$(abspath $(SAM)) $(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP) $(PEBBLE)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/certrenew demo

# certrenew vs certbot + certbot-dns-route53 on the devstack (certbot goes into bench/.venv); not part of test
bench: $(STAMP) $(PEBBLE)
	CERTRENEW_PEBBLE=$(abspath $(PEBBLE)) $(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(SAMVENV) .devstack .pytest_cache
