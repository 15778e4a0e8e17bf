# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCENARIO ?= scenarios/baseline.yaml
# the build compiles these with mypyc (setup.py): reinstall when they change
BUILD  := pyproject.toml setup.py sim/model/bargaining.py sim/model/compiled.py sim/model/world.py

.PHONY: run test test-quick bench lint clean calibration

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BUILD) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(BUILD) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: install the project and run the baseline scenario
run: $(VENV)/.installed
	$(BIN)/sim run $(SCENARIO) --force

## test: install dev dependencies and run the whole test suite
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup

## test-quick: the suite without the slow statistical and end-to-end tests
test-quick: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow"

## calibration: the shipped calibration of the 2025 hindcast (docs/validation.md), ~10 min
CALIBRATED := tracks.calls.cancel_prob tracks.summit.cancel_prob \
	tracks.summit.requires.convergence tracks.summit.stall_prob tracks.ministers.cancel_prob \
	tracks.irritants.cancel_prob tracks.irritants.postpone_prob tracks.parliament.cadence_days \
	tracks.parliament.postpone_prob climate.equilibrium sides.russia.topics.embassy.reservation \
	sides.united_states.topics.flights.reservation
calibration: $(VENV)/.installed
	$(BIN)/sim calibrate scenarios/hindcast_2025.yaml --facts scenarios/facts/hindcast_2025.yaml \
		$(addprefix --input ,$(CALIBRATED)) --population 1000 --generations 8 --seed 2025 \
		--out scenarios/calibration/hindcast_2025 --force

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run_all.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check sim tests benchmarks setup.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache build sim_model__mypyc*.so sim/model/*.so
