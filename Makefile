# The README's two commands (`make run`, `make test`) and what they stand on.
# uv is installed from PyPI when missing; both environments come from their lock files.
SHELL := /bin/bash
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: setup run test down status bench

setup:
	@command -v cargo >/dev/null 2>&1 || { echo "cargo not found: the validator's native kernel \
	(native/) needs Rust; install it with rustup (https://rustup.rs) and retry"; exit 1; }
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen
	$(UV) sync --frozen --project streaming

# `make run` options (unset: `fraud-platform run --help` gives the defaults): DAYS of simulated
# history, VOLUME payments a day, live RATE per second, DEMO=0 for the services alone.
RUN_OPTIONS = $(if $(DAYS),--days $(DAYS)) $(if $(VOLUME),--volume $(VOLUME)) \
	$(if $(RATE),--rate $(RATE)) $(if $(filter 0,$(DEMO)),--no-demo)

run: setup  ## the main job end to end: services, history, backfill, model, live predictions
	$(UV) run fraud-platform run $(RUN_OPTIONS)

test: setup  ## lint, then unit and integration tests against the real services
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest

down:
	$(UV) run fraud-platform stack down

status:
	$(UV) run fraud-platform stack status

bench: setup  ## benchmarks: platform against raw baselines, printed side by side
	$(UV) run python benchmarks/ingestion/bench_validator.py
	$(UV) run python benchmarks/batch/bench_features.py
	$(UV) run python benchmarks/quality/bench_checks.py
	$(UV) run python benchmarks/streaming/bench_feature_fetch.py
	$(UV) run python benchmarks/streaming/bench_enrichment_latency.py
	$(UV) run python benchmarks/streaming/bench_scorer.py
	$(UV) run python benchmarks/first_run/bench_first_run.py
